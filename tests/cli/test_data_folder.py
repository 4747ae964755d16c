"""The data folder is safe (issue 16): no installation by typo, modes, clear refusals.

Run as a user would: ``python -m bastion`` in a subprocess on real folders.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import PASSWORD
from tests.support.cli import bastion
from tests.support.server import free_port

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def single_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ("audit", "verify"),
        ("audit", "checkpoint"),
        ("user", "list"),
        ("user", "suspend", "alice"),
        ("key", "create", "--service-account", "ingest"),
        ("keys", "rotate"),
    ],
)
def test_mistyped_data_dir_is_an_error_not_a_new_installation(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "dta"
    result = bastion(typo, *command)
    line = single_error_line(result)
    assert f"no Bastion installation in {typo}" in line
    assert "bastion init" in line
    assert "intact" not in result.stdout
    assert not typo.exists()


def test_an_existing_empty_folder_is_not_an_installation_either(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    single_error_line(bastion(empty, "audit", "verify"))
    assert list(empty.iterdir()) == []


def test_init_creates_an_installation_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = bastion(data, "init")
    assert created.returncode == 0, created.stderr
    assert "Created a Bastion installation" in created.stdout
    assert bastion(data, "audit", "verify").returncode == 0
    again = bastion(data, "init")
    assert again.returncode == 0
    assert "already" in again.stdout


def test_bastion_creates_its_folders_0700_and_files_0600(tmp_path: Path) -> None:
    data = tmp_path / "new" / "deeper"
    assert bastion(data, "init").returncode == 0
    created = bastion(
        data, "user", "create", "alice", "--role", "viewer", "--password-stdin", stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    assert mode(tmp_path / "new") == 0o700  # a parent it created is its own too
    found = [data, *data.rglob("*")]
    assert any(path.name == "bastion.db" for path in found)
    for path in found:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_a_folder_bastion_did_not_create_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)  # like /tmp or a home folder: not Bastion's to change
    initialised = bastion(shared, "init")
    assert initialised.returncode == 0, initialised.stderr
    assert "open to other users (mode 0755)" in initialised.stderr  # warned, not fixed
    assert f"chmod 700 {shared}" in initialised.stderr
    for command in (("user", "list"), ("audit", "verify"), ("keys", "rotate")):
        assert bastion(shared, *command).returncode == 0
        assert mode(shared) == 0o755
    inside = shared / "data"
    assert bastion(inside, "init").returncode == 0
    assert mode(shared) == 0o755
    assert mode(inside) == 0o700


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A folder this test's commands may enter but not write in, and the command prefix
    that runs them so. Root writes anywhere, so as root the folder belongs to another
    user and the command runs without the capabilities that override file modes."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root this needs setpriv (util-linux) to drop capabilities")
        os.chown(folder, NOBODY, NOBODY)
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    folder.chmod(0o555)
    try:
        yield folder, prefix
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("inside", [False, True])
def test_unwritable_data_folder_is_one_clear_line(
    unwritable_folder: tuple[Path, list[str]], inside: bool
) -> None:
    folder, prefix = unwritable_folder
    data = folder / "data" if inside else folder
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "bastion", "init", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=60,
        check=False,
    )
    line = single_error_line(result)
    assert f"cannot use {data} as the data folder: permission denied" in line
    assert list(folder.iterdir()) == []


def test_a_file_as_the_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    for command in (("init",), ("serve", "--port", str(free_port()))):
        line = single_error_line(bastion(afile, *command))
        assert f"cannot use {afile} as the data folder: it is not a folder" in line
    line = single_error_line(bastion(afile / "data", "init"))
    assert "a part of the path is a file" in line
    assert afile.read_text() == "mine"


def test_a_data_folder_under_proc_is_one_clear_line() -> None:
    for command in (("init",), ("serve", "--port", str(free_port()))):
        line = single_error_line(bastion(Path("/proc/bastion-data"), *command))
        assert "cannot use /proc/bastion-data as the data folder" in line


def test_a_path_with_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    odd = tmp_path / "[bold]x[/]"
    line = single_error_line(bastion(odd, "user", "list"))
    assert str(odd) in line
