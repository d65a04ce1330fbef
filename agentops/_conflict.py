"""Detect the official AgentOps SDK installed next to agentops-django.

Both distributions ship a top-level package named ``agentops``. pip installs
either over the other without a word, file by file, so the package directory
ends up holding some files of each: with the official SDK installed last its
``agentops/__init__.py`` runs and ours are dead weight; with ours installed
last ours runs, and the first ``from agentops import semconv`` gets the
official ``agentops/semconv/`` package instead of ``semconv.py`` and fails
with ``module 'agentops.semconv' has no attribute ...``.

This module uses the standard library only and imports nothing else of
agentops, so it works whichever ``agentops/__init__.py`` is in place:

* ``agentops/__init__.py`` calls :func:`check_at_import` before anything
  else, and raises :class:`PackageConflictError` with the fix;
* ``agentops_django``'s system checks call :func:`find_conflict`.
"""

from __future__ import annotations

import importlib.metadata
import os

#: Our distribution's name.
DISTRIBUTION = "agentops-django"
#: The official AgentOps SDK's distribution name.
OFFICIAL_DISTRIBUTION = "agentops"
#: Files only the official SDK's ``agentops`` package has (relative to the package directory).
OFFICIAL_MARKERS = (
    "semconv/__init__.py",
    "sdk/core.py",
    "client/client.py",
    "legacy/__init__.py",
    "instrumentation/__init__.py",
)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

FIX = (
    "agentops-django speaks AgentOps' API (code written for `import agentops` runs on it unchanged), "
    "so install one of the two, never both: run `pip uninstall -y agentops agentops-django`, then "
    "reinstall the one you want (`pip install agentops-django`, or `pip install agentops` for the "
    "official SDK). Uninstall both first: each one's uninstall removes files the other overwrote."
)


class PackageConflictError(ImportError):
    """The official AgentOps SDK and agentops-django are installed together; the message says how to fix it."""


def official_markers(package_dir: str = _PACKAGE_DIR) -> list[str]:
    """The official SDK's files present in ``package_dir`` (ours has none of them)."""
    return [marker for marker in OFFICIAL_MARKERS if os.path.exists(os.path.join(package_dir, marker))]


def _official_version() -> str | None:
    try:
        return importlib.metadata.version(OFFICIAL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken dist-info must not hide the real answer
        return "unknown version"


def _official_location() -> str | None:
    try:
        dist = importlib.metadata.distribution(OFFICIAL_DISTRIBUTION)
        return os.path.dirname(os.path.abspath(str(dist.locate_file("agentops/__init__.py"))))
    except Exception:
        return None


def find_conflict(package_dir: str = _PACKAGE_DIR) -> str | None:
    """Say what is wrong if the official AgentOps SDK is installed alongside agentops-django.

    Args:
        package_dir: The ``agentops`` package directory to inspect (this
            module's own, i.e. the one Python imports).

    Returns:
        A message naming the conflict and the fix, or ``None`` when the
        official SDK is neither mixed into ``package_dir`` nor installed
        anywhere on ``sys.path``.
    """
    markers = official_markers(package_dir)
    version = _official_version()
    if markers:
        owner = f"the official AgentOps SDK ('{OFFICIAL_DISTRIBUTION}' {version or 'of unknown version'})"
        return (
            f"agentops-django cannot work: {owner} is installed in the same environment, and both install "
            f"the top-level package 'agentops'. Their files are now mixed in {package_dir} "
            f"(found the official SDK's {', '.join(markers[:2])}), so `import agentops` runs neither one "
            f"correctly. {FIX}"
        )
    if version is not None:
        where = _official_location()
        place = f" in {where}" if where and where != package_dir else ""
        return (
            f"the official AgentOps SDK ('{OFFICIAL_DISTRIBUTION}' {version}) is installed{place} next to "
            f"agentops-django; both provide the top-level package 'agentops', and `import agentops` gets "
            f"whichever comes first on sys.path (now agentops-django's, in {package_dir}). {FIX}"
        )
    return None


def check_at_import(package_dir: str = _PACKAGE_DIR) -> None:
    """Raise if the official SDK's files are mixed into our package directory (nothing of ours can work then).

    Only looks for files (a few ``stat`` calls): cheap enough for every import.

    Raises:
        PackageConflictError: With the message of :func:`find_conflict`.
    """
    if official_markers(package_dir):
        raise PackageConflictError(find_conflict(package_dir))
