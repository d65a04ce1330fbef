"""``scripts/bootstrap.py``: what each profile installs, when a run installs again, how a failure reads.

These tests create no environment (the demo's and the suite's own runs do);
they point the script at a folder of their own and look at its decisions.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"pytest", "playwright", "mypy", "ruff", "hypothesis", "matplotlib", "numpy", "gunicorn", "sentry-sdk"}


@pytest.fixture
def bootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, its ``.venv`` and ``pyproject.toml`` moved into ``tmp_path``."""
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", ROOT / "scripts" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.setattr(module, "VENV", venv)
    monkeypatch.setattr(module, "LOG", venv / "bootstrap.log")
    monkeypatch.setattr(module, "PYPROJECT", tmp_path / "pyproject.toml")
    return module


def _names(bootstrap: ModuleType, arguments: list[str]) -> set[str]:
    return {bootstrap._name(argument) for argument in arguments if not argument.startswith("-")}


def test_the_demo_profile_installs_what_the_demo_imports_and_no_development_tool(bootstrap: ModuleType) -> None:
    """The demo's ``.venv`` gets Django, Celery, the OpenAI client and the database clients, not the dev group."""
    arguments = bootstrap._pip_arguments("demo")
    names = _names(bootstrap, arguments)
    assert {"django", "celery", "openai", "opentelemetry-sdk", "wrapt", "psycopg", "dj-database-url"} <= names
    assert not names & DEV_ONLY
    assert "-e" not in arguments and "--group" not in arguments  # the demo runs the project from the checkout


def test_the_dev_profile_installs_the_project_editable_with_every_extra_and_the_dev_group(
    bootstrap: ModuleType,
) -> None:
    arguments = bootstrap._pip_arguments("dev")
    assert arguments[:2] == ["-e", f"{ROOT}[all]"]
    assert arguments[2:] == ["--group", f"{bootstrap.PYPROJECT}:dev"]


def test_the_demo_after_the_tests_installs_nothing_and_the_tests_after_the_demo_install_more(
    bootstrap: ModuleType,
) -> None:
    """A ``dev`` environment satisfies the demo; a ``demo`` one does not satisfy the tests."""
    assert not bootstrap.is_installed("demo")
    bootstrap._stamp("demo").write_text(bootstrap._wanted_stamp("demo"))
    assert bootstrap.is_installed("demo")
    assert not bootstrap.is_installed("dev")

    bootstrap._stamp("demo").unlink()
    bootstrap._stamp("dev").write_text(bootstrap._wanted_stamp("dev"))
    assert bootstrap.is_installed("dev")
    assert bootstrap.is_installed("demo")


def test_a_change_to_the_dependencies_installs_again_and_a_change_to_tool_settings_does_not(
    bootstrap: ModuleType,
) -> None:
    for profile in ("demo", "dev"):
        bootstrap._stamp(profile).write_text(bootstrap._wanted_stamp(profile))
    pyproject = bootstrap.PYPROJECT
    text = pyproject.read_text()

    pyproject.write_text(text.replace("line-length = 120", "line-length = 100"))
    assert bootstrap.is_installed("demo") and bootstrap.is_installed("dev")

    pyproject.write_text(text.replace('"wrapt>=1.16",', '"wrapt>=1.16",\n    "attrs>=23",'))
    assert not bootstrap.is_installed("demo")
    assert not bootstrap.is_installed("dev")


def test_a_failed_step_says_what_failed_and_why_before_the_rest_of_pips_output(
    bootstrap: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    step = bootstrap._Step("installing the demo's packages")
    failing = "print('Collecting nosuchpackage'); print('ERROR: No matching distribution found'); raise SystemExit(1)"

    with pytest.raises(bootstrap.BootstrapError) as raised:
        step.run([sys.executable, "-c", failing])

    message = str(raised.value)
    assert message.startswith("installing the demo's packages failed: ERROR: No matching distribution found\n")
    assert "Collecting nosuchpackage" in message  # the end of pip's output follows
    assert "failed (exit code 1)" in capsys.readouterr().out
    assert "ERROR: No matching distribution found" in bootstrap.LOG.read_text()
