"""Create and refresh the project's virtual environment, then run inside it.

Used by the README's two commands so that a fresh clone with only Python 3.11+
works. What goes into ``.venv`` depends on the command (its *profile*):

* ``demo`` (``python3 demo.py``): only what the demo site imports: the
  project's dependencies with its ``django``, ``celery``, ``openai``,
  ``postgres`` and ``redis`` extras (the last two for the demo settings'
  ``DATABASE_URL`` and ``CELERY_BROKER_URL``) and ``dj-database-url``. The
  project itself is not installed: the demo runs it from the checkout;
* ``dev`` (``python3 runtests.py``, ``python3 scripts/bootstrap.py``, the
  benchmarks): the project, editable, with every extra and the ``dev``
  dependency group (test tools, linters, Playwright, the benchmark libraries).
  It includes the demo's.

Each profile leaves a stamp in ``.venv``: a hash of what it installs and of
``pyproject.toml``'s build system, project and dependency groups (not of the
tools' settings). A later run installs again only when the hash changed.
Running the demo in a ``dev`` environment installs nothing; running the tests
after the demo adds what the tests need. pip's own output goes to
``.venv/bootstrap.log``; the console gets one short line a step, and pip's
error and last lines when it fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYPROJECT = ROOT / "pyproject.toml"
LOG = VENV / "bootstrap.log"
#: The pip that knows ``--group`` (PEP 735 dependency groups).
PIP_REQUIREMENT = "pip>=25.1"
PIP_MINIMUM = (25, 1)

#: Profile name -> (what it installs, in words; the project's extras; requirements by name from the dev group).
PROFILES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "demo": ("the demo's packages", ("django", "celery", "openai", "postgres", "redis"), ("dj-database-url",)),
    "dev": ("the project, every extra and the dev tools", ("all",), ()),
}
#: Profile name -> the profiles whose installation also satisfies it (``dev`` includes ``demo``).
SATISFIED_BY = {"demo": ("demo", "dev"), "dev": ("dev",)}
DEFAULT_PROFILE = "dev"


class BootstrapError(RuntimeError):
    """A step of setting up ``.venv`` failed; the message says which and why."""


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(PYPROJECT.read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _requirements(extras: tuple[str, ...], picks: tuple[str, ...]) -> list[str]:
    """The project's dependencies with ``extras`` (read from ``pyproject.toml``), and ``picks`` from its dev group."""
    pyproject = _pyproject()
    project = pyproject["project"]
    wanted = list(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in project["optional-dependencies"][extra]:
            # An extra that names the project itself ("agentops-django[django,celery]") means those extras.
            own = re.fullmatch(rf"{re.escape(project['name'])}\[([^\]]+)\]", requirement.replace(" ", ""))
            if own:
                todo += own.group(1).split(",")
            else:
                wanted.append(requirement)
    dev = [entry for entry in pyproject["dependency-groups"]["dev"] if isinstance(entry, str)]
    for name in picks:
        found = [entry for entry in dev if _name(entry) == name]
        if not found:
            raise BootstrapError(f"pyproject.toml's dev group has no requirement for {name}")
        wanted += found
    return wanted


def _pip_arguments(profile: str) -> list[str]:
    """What ``pip install`` is given for ``profile``."""
    _, extras, picks = PROFILES[profile]
    if profile == "demo":
        return _requirements(extras, picks)
    return ["-e", f"{ROOT}[{','.join(extras)}]", "--group", f"{PYPROJECT}:dev"]


def _stamp(profile: str) -> Path:
    return VENV / f".agentops-{profile}"


def _wanted_stamp(profile: str) -> str:
    pyproject = _pyproject()
    installs = {key: pyproject.get(key) for key in ("build-system", "project", "dependency-groups")}
    text = json.dumps([profile, _pip_arguments(profile), installs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp_matches(profile: str) -> bool:
    stamp = _stamp(profile)
    return stamp.is_file() and stamp.read_text() == _wanted_stamp(profile)


def is_installed(profile: str) -> bool:
    """Whether ``.venv`` holds what ``profile`` needs for the current ``pyproject.toml``."""
    return _venv_python().exists() and any(_stamp_matches(name) for name in SATISFIED_BY[profile])


class _Step:
    """Runs one command with its output going to the log, and shows it on the console as one line.

    In a terminal the line counts the seconds and names what pip is fetching;
    elsewhere it is written once, completed with the outcome and the seconds.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.tty = sys.stdout.isatty()
        self.activity = ""
        self.started = time.monotonic()
        self._done = threading.Event()

    def _line(self, elapsed: float) -> str:
        activity = f"  {self.activity}" if self.activity else ""
        return f"\r\x1b[2K==> {self.title} … {elapsed:.0f} s{activity}"[:200]

    def _tick(self) -> None:
        while not self._done.wait(0.25):
            sys.stdout.write(self._line(time.monotonic() - self.started))
            sys.stdout.flush()

    def run(self, argv: list[str]) -> str:
        """Run ``argv``; return its output.

        Raises:
            BootstrapError: It exited with an error.
        """
        lines: list[str] = []
        ticker = None
        if self.tty:
            ticker = threading.Thread(target=self._tick, daemon=True)
            ticker.start()
        else:
            sys.stdout.write(f"==> {self.title} … ")
            sys.stdout.flush()
        with open(LOG, "a") as log:
            log.write(f"\n$ {shlex.join(argv)}\n")
            log.flush()
            try:
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
                assert process.stdout is not None
                for line in process.stdout:
                    log.write(line)
                    lines.append(line.rstrip("\n"))
                    self._follow(line)
                code = process.wait()
            finally:
                self._done.set()
                if ticker is not None:
                    ticker.join()
        if code != 0:
            self.finish(f"failed (exit code {code})")
            raise BootstrapError(_failure(self.title, lines))
        return "\n".join(lines)

    def _follow(self, line: str) -> None:
        """Name what pip does, from its output ("Collecting django>=5.2", "Installing collected packages: ...")."""
        if line.startswith("Collecting "):
            self.activity = f"fetching {_name(line.split()[1])}"
        elif line.startswith("Installing collected packages:"):
            count = len(line.split(":", 1)[1].split(","))
            self.activity = f"installing {count} package{'s' if count != 1 else ''}"

    def finish(self, outcome: str = "") -> None:
        took = f"({time.monotonic() - self.started:.1f} s)"
        text = f"{outcome}  {took}" if outcome else took
        if self.tty:
            sys.stdout.write(f"\r\x1b[2K==> {self.title}{': ' if outcome else '  '}{text}\n")
        else:
            sys.stdout.write(f"{text}\n")
        sys.stdout.flush()


def _failure(title: str, lines: list[str]) -> str:
    """The error message for a failed step: pip's own error first, then the end of its output."""
    errors = [line for line in lines if line.startswith("ERROR:")]
    cause = errors[0] if errors else next((line for line in reversed(lines) if line.strip()), "no output")
    tail = "\n".join("    " + line for line in lines[-25:])
    return f"{title} failed: {cause}\n  the end of its output ({LOG} has all of it):\n{tail}"


def _pip_version(python: Path) -> tuple[int, ...]:
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('pip'))"],
        capture_output=True,
        text=True,
    )
    return tuple(int(part) for part in re.findall(r"\d+", result.stdout)[:2]) or (0,)


def ensure_venv(profile: str = DEFAULT_PROFILE) -> Path:
    """Create or update ``.venv`` so that it holds what ``profile`` needs; return its interpreter.

    Args:
        profile: ``"demo"`` or ``"dev"`` (see the module's docstring).

    Returns:
        The path of ``.venv``'s Python.

    Raises:
        SystemExit: Python is older than 3.11, or a step failed (the message says which and why).
    """
    if sys.version_info < (3, 11):
        sys.exit("agentops-django needs Python 3.11 or newer")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
    if is_installed(profile):
        return _venv_python()
    try:
        return _install(profile)
    except BootstrapError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        print("\ninterrupted: .venv is incomplete, and the next run will finish it", flush=True)
        sys.exit(130)


def _install(profile: str) -> Path:
    started = time.monotonic()
    python = _venv_python()
    VENV.mkdir(exist_ok=True)
    LOG.write_text(f"# scripts/bootstrap.py, profile {profile}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    print(f"==> setting up .venv for the {profile} profile (pip's output goes to {LOG.relative_to(ROOT)})", flush=True)
    if not python.exists():
        step = _Step("creating .venv")
        step.run([sys.executable, "-m", "venv", str(VENV)])
        step.finish()
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    # Only dev's --group needs a newer pip than the one venv brings; the demo skips the step.
    if profile == "dev" and _pip_version(python) < PIP_MINIMUM:
        step = _Step("updating pip")
        step.run([*pip, "install", "--progress-bar", "off", "--upgrade", PIP_REQUIREMENT])
        step.finish()
    title = f"installing {PROFILES[profile][0]}"
    step = _Step(title)
    output = step.run([*pip, "install", "--progress-bar", "off", *_pip_arguments(profile)])
    installed = re.search(r"^Successfully installed (.+)$", output, re.MULTILINE)
    count = len(installed.group(1).split()) if installed else 0
    step.finish(f"{count} package{'s' if count != 1 else ''} added" if count else "nothing new")
    _stamp(profile).write_text(_wanted_stamp(profile))
    print(f"==> .venv is ready ({time.monotonic() - started:.1f} s)", flush=True)
    return python


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_in_venv(script: Path, profile: str = DEFAULT_PROFILE) -> None:
    """Make sure ``.venv`` holds what ``profile`` needs, and re-run ``script`` with its interpreter.

    Args:
        script: The script to run again (with this process's arguments).
        profile: ``"demo"`` or ``"dev"`` (see the module's docstring).
    """
    python = ensure_venv(profile)
    if not in_venv():
        os.execv(str(python), [str(python), str(script), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Create or update .venv for the demo or for development.")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"what to install (default {DEFAULT_PROFILE}: everything the tests need)",
    )
    ensure_venv(parser.parse_args(argv).profile)


if __name__ == "__main__":
    main()
