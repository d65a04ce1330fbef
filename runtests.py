#!/usr/bin/env python3
"""Run the whole test suite: ``python3 runtests.py`` (extra arguments go to pytest).

Sets up ``.venv`` first (see scripts/bootstrap.py). Without arguments it runs
every test on SQLite, then the Django tests again on PostgreSQL. Tests that
need a server (PostgreSQL, Redis, RabbitMQ) or Chromium skip with a reason
where it is missing, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__))


def pytest(args: list[str], **env: str) -> int:
    print(f"==> pytest {' '.join(args)} {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, env={**os.environ, **env}).returncode


def main() -> int:
    if sys.argv[1:]:
        return pytest(sys.argv[1:])
    failed = pytest([])
    failed |= pytest(
        ["tests/agentops_django", "-m", "not browser and not faults and not rabbitmq"],
        AGENTOPS_TEST_DATABASE="postgres",
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
