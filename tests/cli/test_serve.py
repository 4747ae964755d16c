"""``bastion serve`` as an operator runs it (issue 16): one server per data folder, the
port checked first, "listening" only once it is true, TLS, ``make serve``'s settings."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cli.test_data_folder import single_error_line
from tests.support.server import TEST_ENV, Credentials, free_port, start_server, worker_pids

ROOT = Path(__file__).resolve().parents[2]


def serve_command(data: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bastion",
        "serve",
        "--data-dir",
        str(data),
        "--port",
        str(port),
        *extra,
    ]


def run_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **TEST_ENV, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra}


def serve_once(data: Path, port: int, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``bastion serve`` expected to stop by itself (refused); what it printed."""
    return subprocess.run(
        serve_command(data, port, *extra),
        env=run_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def serving(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A server started as ``command``; yields it and its "listening on" line."""
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # make and its children stop together
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "listening on" in line:
                yield process, line
                break
        else:
            raise AssertionError("the server stopped before listening:\n" + "".join(seen))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_second_server_on_a_live_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    try:
        assert first.process is not None
        second = serve_once(data, free_port())
        line = single_error_line(second)
        assert f"in use by another Bastion server (pid {first.process.pid})" in line
        assert "listening" not in second.stdout
        # The first server still owns its folder: its writes go through.
        minted = Credentials(first.data_dir, first.env).token(role="developer")
        token = {"Authorization": f"Bearer {minted}"}
        created = httpx.put(
            f"{first.url}/collections/kept",
            headers=token,
            json={"vectors": {"size": 2, "distance": "Dot"}},
        )
        assert created.status_code == 200, created.text
        upserted = httpx.put(
            f"{first.url}/collections/kept/points?wait=true",
            headers=token,
            json={"points": [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}]},
        )
        assert upserted.status_code == 200, upserted.text
    finally:
        first.stop()
    # Once it has stopped, the folder is free again.
    from bastion.datadir import lock_for_server

    lock_for_server(data).release()


def test_worker_processes_hold_the_folder_until_the_last_has_exited(tmp_path: Path) -> None:
    from bastion.datadir import DataFolderInUse, lock_for_server

    data = tmp_path / "data"
    server = start_server(data, env={"BASTION_WORKERS": "2"})
    try:
        assert server.process is not None
        deadline = time.monotonic() + 60
        while len(workers := worker_pids(server.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        server.kill()  # only the parent: its workers still run for a moment
        with pytest.raises(DataFolderInUse, match="in use by another Bastion server"):
            lock_for_server(data)
        deadline = time.monotonic() + 30
        while True:  # the workers notice their parent is gone and stop
            try:
                lock_for_server(data).release()
                break
            except DataFolderInUse:
                assert time.monotonic() < deadline, "the workers kept the folder locked"
                time.sleep(0.2)
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def test_port_in_use_fails_before_anything_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            result = serve_once(data, port, "--workers", workers)
            line = single_error_line(result)
            assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in line
            assert "setup" not in result.stdout
            assert not data.exists()


def test_listening_is_printed_only_once_the_port_is_open(tmp_path: Path) -> None:
    port = free_port()
    with serving(serve_command(tmp_path / "data", port), run_env()) as (_, line):
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass  # accepted at once: the port was open when the line was printed
        assert f"http://localhost:{port}" in line


def test_make_serve_honours_bastion_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    port = free_port()
    env = run_env(BASTION_DATA_DIR=str(data), BASTION_PORT=str(port))
    with serving(["make", "--no-print-directory", "serve"], env, cwd=ROOT) as (_, line):
        assert f"(data: {data})" in line
        assert (data / "keys" / "manifest.json").is_file()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_tls_with_a_self_signed_certificate(tmp_path: Path, workers: str) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    command = serve_command(
        tmp_path / "data",
        port,
        "--workers",
        workers,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    )
    with serving(command, run_env()) as (_, line):
        assert f"https://localhost:{port}" in line
        trusting = ssl.create_default_context(cafile=str(cert))
        for host in ("localhost", "127.0.0.1"):
            answer = httpx.get(f"https://{host}:{port}/healthz", verify=trusting)
            assert answer.status_code == 200
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"https://localhost:{port}/healthz")  # a client that does not trust it
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")  # no plain HTTP on a TLS port


def test_bad_tls_files_fail_before_anything_is_created(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_key = self_signed(tmp_path / "other")
    data = tmp_path / "data"
    cases = [
        (["--tls-cert", str(cert)], "needs both BASTION_TLS_CERT and BASTION_TLS_KEY"),
        (["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key)], "no such file"),
        (["--tls-cert", str(key), "--tls-key", str(key)], "do not load"),
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], "do not load"),
    ]
    for extra, expected in cases:
        result = serve_once(data, free_port(), *extra)
        assert result.returncode == 1, result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
        assert not data.exists()


def test_unknown_bastion_variable_stops_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = serve_once(data, free_port(), BASTION_PROT="8080")
    assert result.returncode == 1
    assert "BASTION_PROT: not a Bastion setting (did you mean BASTION_PORT?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists()
