"""Do no harm: adding ``agentops_django`` to a site leaves the site's own test suite as it was.

A site made with ``startproject`` (:mod:`tests.user_site.build`: a shop app with
models, views, an eager Celery task, and an ordinary test suite for pytest-django
and Django's runner that knows nothing about agentops) runs its suite in a
process of its own, with and without ``"agentops_django"`` in
``INSTALLED_APPS``: by pytest (also ``--reuse-db``, twice in a row), by
``manage.py test`` (also ``--parallel 2``), on SQLite's in-memory test database
(Django's default for startproject's ``db.sqlite3``) and on PostgreSQL.

Each run is made once, by the first test that asks for it, and what it left
behind is recorded with it; the tests state what must hold of the runs. The
site's suite itself checks that no test finds rows another test left (a
``TransactionTestCase`` and a ``transaction=True`` test count the rows of
every installed model).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import server_up
from tests.user_site import build
from tests.user_site.build import Outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DATABASES = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
#: Tests in the site's suite: pytest runs all of them; Django's runner the TestCase classes only.
SITE_TESTS = {"pytest": 12, "manage.py test": 6}
#: What a run's output must not show, even when every test passed.
TROUBLE = re.compile(
    r"^(Traceback|Exception in thread|Exception ignored|System check identified some issues)|database table is locked",
    re.MULTILINE,
)


@dataclasses.dataclass
class Run:
    """One way of running the site's suite (two processes for ``--reuse-db``) and what it left behind."""

    outcomes: list[Outcome]
    spans_before: tuple[int, int] | None
    spans_after: tuple[int, int] | None
    test_databases_left: list[str]
    test_databases_after_cleanup: list[str]

    def report(self) -> str:
        return "\n\n".join(outcome.tail() for outcome in self.outcomes)


class Runs:
    """The site, its development databases (migrated with the app), and every run made so far."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.prefix = f"usersite_{uuid.uuid4().hex[:8]}"
        self.pg_name: str | None = None
        self.made: dict[tuple[str, str, bool], Run] = {}

    def get(self, database: str, command: str, *, agentops: bool) -> Run:
        key = (database, command, agentops)
        if key not in self.made:
            self.made[key] = self._run(database, command, agentops)
        return self.made[key]

    def _run(self, database: str, command: str, agentops: bool) -> Run:
        pg_name = self._pg_dev_database() if database == "postgres" else None
        test_name = f"test_{self.prefix}_{uuid.uuid4().hex[:6]}"
        env = build.environment(database=database, agentops=agentops, pg_name=pg_name, pg_test_name=test_name)
        before = build.stored_spans(self.site, database, pg_name)
        times = 2 if "--reuse-db" in command else 1
        outcomes = [build.run(self.site, command, env, timeout=120) for _ in range(times)]
        after = build.stored_spans(self.site, database, pg_name)
        left: list[str] = []
        after_cleanup: list[str] = []
        if database == "postgres":
            left = build.pg_databases(test_name)
            build.pg_drop(left)
            after_cleanup = build.pg_databases(test_name)
        return Run(outcomes, before, after, left, after_cleanup)

    def _pg_dev_database(self) -> str:
        if self.pg_name is None:
            build.pg_create(self.prefix)
            self.pg_name = self.prefix
            build.migrate(self.site, build.environment(database="postgres", agentops=True, pg_name=self.pg_name))
        return self.pg_name

    def close(self) -> None:
        if self.pg_name is not None and server_up("postgres"):
            build.pg_drop(build.pg_databases(self.prefix) + build.pg_databases(f"test_{self.prefix}"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """The site, built once for the module; its SQLite development database migrated with the app."""
    site = build.build(tmp_path_factory.mktemp("user_site"))
    build.migrate(site, build.environment(agentops=True))
    made = Runs(site)
    try:
        yield made
    finally:
        made.close()


def assert_passed(outcome: Outcome, expected: int) -> None:
    assert outcome.returncode == 0, outcome.tail()
    assert outcome.tests_passed == expected, outcome.tail()
    assert not TROUBLE.search(outcome.output), outcome.tail()


@pytest.mark.parametrize("command", ["pytest", "manage.py test", "manage.py test --parallel 2"])
@pytest.mark.parametrize("database", DATABASES)
def test_the_sites_suite_passes_the_same_tests_with_the_app_as_without(runs: Runs, database: str, command: str) -> None:
    """Every test of the site passes, with nothing raised or logged outside them, app or no app."""
    expected = SITE_TESTS["pytest" if command == "pytest" else "manage.py test"]
    assert_passed(runs.get(database, command, agentops=False).outcomes[0], expected)
    assert_passed(runs.get(database, command, agentops=True).outcomes[0], expected)


@pytest.mark.parametrize("database", DATABASES)
def test_with_reuse_db_a_second_run_on_the_kept_test_database_passes_too(runs: Runs, database: str) -> None:
    """pytest-django's ``--reuse-db`` keeps the test database; nothing the app did spoils it for the next run."""
    run = runs.get(database, "pytest --reuse-db", agentops=True)
    for outcome in run.outcomes:
        assert_passed(outcome, SITE_TESTS["pytest"])
    if database == "postgres":
        assert len(run.test_databases_left) == 1, "--reuse-db keeps the test database"
        assert run.test_databases_after_cleanup == [], "and it can be dropped once the run is over"


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["pytest", "manage.py test", "manage.py test --parallel 2"])
def test_the_postgresql_test_databases_are_dropped_at_the_end_of_the_run(runs: Runs, command: str) -> None:
    """No connection of the app's outlives the run: Django drops its test database (and its clones)."""
    for agentops in (False, True):
        run = runs.get("postgres", command, agentops=agentops)
        assert run.outcomes[0].returncode == 0, run.report()
        assert run.test_databases_left == [], run.report()


@pytest.mark.parametrize("command", ["pytest", "pytest --reuse-db", "manage.py test", "manage.py test --parallel 2"])
@pytest.mark.parametrize("database", DATABASES)
def test_no_span_of_the_test_run_reaches_the_development_database(runs: Runs, database: str, command: str) -> None:
    """The development database (migrated, with the app's tables) holds as many traces and spans after the run."""
    run = runs.get(database, command, agentops=True)
    assert run.spans_before is not None, "the development database has the app's tables"
    assert run.spans_after == run.spans_before, run.report()
