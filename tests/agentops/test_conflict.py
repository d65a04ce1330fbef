"""Installed next to the official AgentOps SDK, agentops-django says so, and how to fix it.

Both distributions ship the top-level package ``agentops``; pip installs
one over the other file by file. The unit tests fake the mixed directory;
the slow test installs the official ``agentops==0.4.21`` and this project
into throwaway virtual environments, in both orders, and imports them.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentops import _conflict

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Run before the code under test in the throwaway environments: no connection leaves the machine.
LOOPBACK_ONLY = (
    "import socket\n"
    "_connect = socket.socket.connect\n"
    "def _loopback_only(sock, address):\n"
    "    host = address[0] if isinstance(address, tuple) else address\n"
    "    if host not in ('127.0.0.1', '::1', 'localhost'):\n"
    "        raise OSError(f'test guard: no connection to {host}')\n"
    "    return _connect(sock, address)\n"
    "socket.socket.connect = _loopback_only\n"
)


def fake_package(directory: Path, *files: str) -> Path:
    for name in ("__init__.py", "_conflict.py", *files):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return directory


def test_our_own_package_has_no_conflict() -> None:
    assert _conflict.find_conflict() is None
    _conflict.check_at_import()


def test_the_official_sdks_files_in_our_package_are_a_conflict_named_with_its_fix(tmp_path: Path) -> None:
    package = fake_package(tmp_path / "agentops", "semconv/__init__.py", "sdk/core.py")
    message = _conflict.find_conflict(str(package))
    assert message is not None
    assert "official AgentOps SDK" in message
    assert str(package) in message
    assert "pip uninstall -y agentops agentops-django" in message
    with pytest.raises(_conflict.PackageConflictError, match="cannot work") as raised:
        _conflict.check_at_import(str(package))
    assert isinstance(raised.value, ImportError)


def test_the_official_distribution_installed_elsewhere_is_a_conflict_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_conflict, "_official_version", lambda: "0.4.21")
    monkeypatch.setattr(_conflict, "_official_location", lambda: "/elsewhere/agentops")
    message = _conflict.find_conflict(str(fake_package(tmp_path / "agentops")))
    assert message is not None
    assert "'agentops' 0.4.21" in message
    assert "/elsewhere/agentops" in message
    _conflict.check_at_import(str(tmp_path / "agentops"))  # ours still works: not raised at import


def run(*command: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout)


def pip(python: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    # The test's own pip installs into the throwaway environment (pip --python): the
    # environments need no pip of their own, and pip's cache is shared.
    return run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", *args)


def install_in_order(venv: Path, wheel: Path, official_first: bool) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    steps = [("agentops==0.4.21",), (wheel,)] if official_first else [(wheel,), ("agentops==0.4.21",)]
    for step in steps:
        done = pip(python, *step)
        if done.returncode != 0:
            reason = f"pip could not install {step[0]}: {done.stderr.strip()[-500:]}"
            if IN_CI:
                pytest.fail(reason)
            pytest.skip(reason)
    return python


def python_c(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    # Isolated (-I): neither the working directory (this checkout) nor PYTHONPATH is on sys.path.
    return run(python, "-I", "-c", LOOPBACK_ONLY + code, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_with_the_official_sdk_installed_in_either_order_our_code_names_the_conflict_and_the_fix(
    tmp_path: Path,
) -> None:
    # The project as `pip install /work/main` would install it, built from a copy so that
    # the build leaves nothing in the working tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("agentops", "agentops_django"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path / "wheel", source)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        ours_last = pool.submit(install_in_order, tmp_path / "ours-last", wheel, True)
        official_last = pool.submit(install_in_order, tmp_path / "official-last", wheel, False)
        ours_last_python, official_last_python = ours_last.result(), official_last.result()

    # Ours installed last: our agentops/__init__.py runs, and stops at once with the message.
    imported = python_c(ours_last_python, "import agentops")
    assert imported.returncode != 0
    last_line = imported.stderr.strip().splitlines()[-1]
    assert last_line.startswith("agentops._conflict.PackageConflictError: agentops-django cannot work")
    assert "official AgentOps SDK ('agentops' 0.4.21)" in last_line
    assert "pip uninstall -y agentops agentops-django" in last_line
    assert "has no attribute" not in imported.stderr

    # The official SDK installed last: its agentops/__init__.py runs (ours cannot run at
    # `import agentops`); our code that survives says what is wrong when asked, as
    # agentops_django's checks do.
    imported = python_c(official_last_python, "import agentops; print(agentops.__file__)")
    assert imported.returncode == 0, imported.stderr
    asked = python_c(official_last_python, "from agentops._conflict import find_conflict; print(find_conflict())")
    assert asked.returncode == 0, asked.stderr
    assert "agentops-django cannot work" in asked.stdout
    assert "pip uninstall -y agentops agentops-django" in asked.stdout
