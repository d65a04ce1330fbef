#!/usr/bin/env python3
"""Run the demo: ``python3 demo.py`` (``--once`` to run the scenario, check it and exit).

Sets up ``.venv`` first with only what the demo needs (scripts/bootstrap.py's
``demo`` profile; an environment set up for the tests has it already); the
demo itself lives in ``demo_project/runner.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__), profile="demo")

sys.path.insert(0, str(ROOT))

from demo_project.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
