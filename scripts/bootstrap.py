"""Create and refresh the project's virtual environment, then run inside it.

Used by the README's two commands (``python3 demo.py``, ``python3 runtests.py``)
so that a fresh clone with only Python 3.11+ works: the first run creates
``.venv`` and installs the project with every extra and the dev group; later
runs reuse it until ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".agentops-installed"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> Path:
    """Create or update ``.venv``; return its interpreter."""
    if sys.version_info < (3, 11):
        sys.exit("agentops-django needs Python 3.11 or newer")
    python = _venv_python()
    if not python.exists():
        print("==> creating .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not STAMP.exists() or STAMP.read_text() != _wanted_stamp():
        print("==> installing agentops-django and its dev tools into .venv", flush=True)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--upgrade", "pip>=25.1"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[all]", "--group", f"{ROOT / 'pyproject.toml'}:dev"], check=True)
        STAMP.write_text(_wanted_stamp())
    return python


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_in_venv(script: Path) -> None:
    """Make sure ``.venv`` is ready, and re-run ``script`` with its interpreter."""
    python = ensure_venv()
    if not in_venv():
        os.execv(str(python), [str(python), str(script), *sys.argv[1:]])


if __name__ == "__main__":
    ensure_venv()
