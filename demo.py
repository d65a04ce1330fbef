#!/usr/bin/env python3
"""Run the demo: ``python3 demo.py`` (``--once`` to run the scenario, check it and exit).

Sets up ``.venv`` first (see scripts/bootstrap.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__))

import agentops  # noqa: E402


def main() -> int:
    agentops.init(exporters=["console"], auto_start_session=False)
    with agentops.start_trace("demo", tags=["placeholder"]):

        @agentops.tool
        def add(a: int, b: int) -> int:
            return a + b

        print("2 + 3 =", add(2, 3))
    agentops.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
