"""Hostile values in spans reach the real database writer next to normal spans: nothing takes them down.

Span names, attributes, events and status messages with lone surrogates, NUL
characters, huge strings and markup; task arguments and results that are
huge, recursive, not JSON, binary or full of surrogates; all written through
:class:`~agentops_django.writer.DatabaseSpanProcessor` into SQLite and into
PostgreSQL (a private cluster) in the same batches as normal spans. The
normal spans must all be stored; a hostile span is stored in a safe form (or,
at worst, dropped and counted); every span is written or counted as dropped.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import Status, StatusCode

import agentops
from agentops_django import celery as celery_signals
from agentops_django.writer import DatabaseSpanProcessor
from tests.faults import harness

pytestmark = [pytest.mark.faults]

LONE = "\udcff\ud800"
HOSTILE_TEXTS = {
    "lone-surrogates": f"a{LONE}b",
    "nul": "a\x00b",
    "huge": "x" * 2_000_000,
    "markup": "<script>alert(1)</script>",
    "mixed": f"\x00{LONE}<b>\u202e\ufeff" * 10,
}


class Recursive(list):
    pass


def hostile_values() -> dict[str, Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    loop_dict: dict[str, Any] = {}
    loop_dict["self"] = loop_dict

    class Unrepresentable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    return {
        "huge-string": "y" * 3_000_000,
        "huge-list": list(range(200_000)),
        "recursive-list": loop,
        "recursive-dict": loop_dict,
        "bytes": b"\x00\xff" * 1000,
        "surrogates": {f"k{LONE}": f"v{LONE}", "nested": [LONE, {"deep": LONE}]},
        "nul": {"a\x00": "b\x00"},
        "not-json": {1, 2, object()},
        "float-nan": [float("nan"), float("inf")],
        "bad-repr": Unrepresentable(),
        "deep": _deep(500),
    }


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, db_alias: Callable[..., str], workdir: Path, unique: str) -> Iterator[Any]:
    """A database alias (SQLite file or private PostgreSQL) and a function counting its span rows."""
    if request.param == "sqlite":
        path = workdir / "writer.sqlite3"
        alias = db_alias({"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 30}})

        def rows(names: list[str]) -> int:
            with sqlite3.connect(path) as connection:
                marks = ",".join("?" * len(names))
                query = f"SELECT count(*) FROM agentops_django_span WHERE name IN ({marks})"
                return connection.execute(query, names).fetchone()[0]

        def dump(names: list[str] | None = None) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as connection:
                return connection.execute("SELECT name, attributes FROM agentops_django_span").fetchall()

        yield alias, rows, dump
        return
    server: harness.PrivatePostgres = request.getfixturevalue("pg_up")
    name = f"payloads_{unique}"
    server.create_database(name)
    alias = db_alias(server.django_settings(name))

    def pg_rows(names: list[str]) -> int:
        return server.sql("SELECT count(*) FROM agentops_django_span WHERE name = ANY(%s)", [names], dbname=name)[0][0]

    def pg_dump(names: list[str] | None = None) -> list[tuple[Any, ...]]:
        return server.sql("SELECT name, attributes::text FROM agentops_django_span", dbname=name)

    yield alias, pg_rows, pg_dump


@pytest.fixture
def writer(target: Any, agentops_init: Callable[..., Any]) -> Iterator[DatabaseSpanProcessor]:
    alias = target[0]
    agentops_init(max_payload_size=4096)
    processor = DatabaseSpanProcessor(alias, queue_size=10_000, batch_size=200, batch_interval=0.05)
    agentops.add_span_processor(processor)
    yield processor
    processor.shutdown()


def span_with(name: str, text: str) -> None:
    """A span carrying ``text`` everywhere a string can go."""
    tracer = agentops.get_tracer()
    with tracer.start_as_current_span(
        name, attributes={"hostile": text, "hostile.list": [text, "ok"], f"key{text[:20]}": 1}
    ) as span:
        span.add_event(f"event{text[:50]}", {"value": text})
        span.set_status(Status(StatusCode.ERROR, text[:10_000]))


def test_hostile_span_strings_never_take_normal_spans_down(
    target: Any, writer: DatabaseSpanProcessor, fault_log: Callable[..., None]
) -> None:
    """Each hostile string, in name, attributes, event and status, shares a batch with normal spans."""
    _, rows, _ = target
    tracer = agentops.get_tracer()
    normal = []
    for kind, text in HOSTILE_TEXTS.items():
        for i in range(3):
            name = f"normal-{kind}-{i}"
            normal.append(name)
            with tracer.start_as_current_span(name):
                pass
        span_with(f"hostile-{kind}", text)
        span_with(f"hostile-{kind}{text[:100]}", text)
    assert writer.force_flush(60_000)
    stats = writer.stats()
    created = len(normal) + 2 * len(HOSTILE_TEXTS)
    stored_normal = rows(normal)
    stored_hostile = rows([f"hostile-{kind}" for kind in HOSTILE_TEXTS])
    fault_log(
        fault=f"hostile span strings ({', '.join(HOSTILE_TEXTS)}) in one batch with normal spans",
        database=target[0],
        created=created,
        stats=stats,
        normal_stored=f"{stored_normal}/{len(normal)}",
        hostile_stored=f"{stored_hostile}/{len(HOSTILE_TEXTS)}",
    )
    assert stats["written"] + stats["dropped"] == created, "a span was neither written nor counted as dropped"
    assert stored_normal == len(normal), "hostile spans took normal spans of their batch down with them"
    assert stats["dropped"] == 0, "hostile spans were dropped instead of being stored in a safe form"


def test_hostile_task_arguments_and_results_are_stored_safely(
    target: Any, writer: DatabaseSpanProcessor, fault_log: Callable[..., None]
) -> None:
    """Task arguments/results that are huge, recursive, not JSON, binary or surrogates: the task runs, spans stored.

    The tasks run through Celery's own ``apply()`` (the signal handlers see the
    real objects, with no serializer in between); the decorated tool gets the
    same values.
    """
    from tests.faults.project import tasks

    was_connected = celery_signals.is_connected()
    celery_signals.connect()

    @agentops.tool(name="hostile-tool")
    def tool(value: Any) -> Any:
        return value

    try:
        outcomes = {}
        for kind, value in hostile_values().items():
            result = tasks.echo.apply(args=(value,), kwargs={"password": "hunter2", "api_key": "sk-1"})
            outcomes[kind] = result.state
            tool(value)
    finally:
        if not was_connected:
            celery_signals.disconnect()
    assert writer.force_flush(60_000)
    stats = writer.stats()
    _, rows, dump = target
    task_rows = rows(["faults.echo"])
    tool_rows = rows(["hostile-tool.tool"])
    stored = dump()
    sizes = sorted(len(attributes) for _, attributes in stored)
    leaked = [name for name, attributes in stored if "hunter2" in attributes or "sk-1" in attributes]
    fault_log(
        fault="hostile task args/results (" + ", ".join(outcomes) + ")",
        database=target[0],
        task_states=outcomes,
        stats=stats,
        task_rows=task_rows,
        tool_rows=tool_rows,
        largest_attributes_chars=sizes[-3:],
        secrets_leaked=leaked,
    )
    assert set(outcomes.values()) == {"SUCCESS"}, "tracing changed a task's outcome"
    assert stats["dropped"] == 0 and stats["written"] == len(stored)
    assert task_rows == len(outcomes) and tool_rows == len(outcomes)
    assert not leaked, "a password or api_key reached the database"
    assert sizes[-1] < 200_000, "a payload was stored without its size cap"
    for _, attributes in stored:
        json.loads(attributes)


# Text with everything hypothesis can make, lone surrogates and NUL included.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
        st.sampled_from("\x00<>&\"'"),
    ),
    max_size=300,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=ANY_TEXT, value=ANY_TEXT)
@example(name="\udcff", value="ok")
@example(name="a\x00b", value="ok")
@example(name="ok", value="\udcff\x00")
def test_arbitrary_text_in_spans_is_stored_or_counted_next_to_normal_spans(
    target: Any, writer: DatabaseSpanProcessor, name: str, value: str
) -> None:
    """Property: whatever text a span carries, the normal span of the same batch is stored."""
    # Hypothesis seeds ``random`` alike for every example, and OpenTelemetry
    # draws span ids from it: without this, examples would repeat span ids.
    random.seed(uuid.uuid4().int)
    _, rows, _ = target
    before = writer.stats()
    marker = f"normal-{id(name)}-{len(value)}-{before['written']}"
    with agentops.get_tracer().start_as_current_span(marker):
        pass
    span_with(name or "empty", value)
    assert writer.force_flush(30_000)
    after = writer.stats()
    assert rows([marker]) == 1, f"a span named {name!r} with {value!r} took a normal span down: {before} {after}"
    assert after["written"] - before["written"] == 2, f"span named {name!r} with {value!r} was not stored"
