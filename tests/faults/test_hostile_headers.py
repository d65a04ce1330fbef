"""Hostile trace headers: malformed, oversized, duplicated or crafted ``traceparent``/``tracestate``/``baggage``.

Through the in-process Django test client (``TRUST_INCOMING_TRACEPARENT`` on
and off), through a real gunicorn server (raw bytes on a socket), and in
Celery message headers (real Celery request objects): the request or task
runs normally, in a fresh trace unless the header is a valid W3C
traceparent that the site trusts, and nothing raises.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentops.testing import CapturedSpans, captured_spans
from agentops_django import _wiring as setup
from agentops_django import celery as celery_signals
from tests.faults import harness

pytestmark = [pytest.mark.faults]

VALID_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID_PARENT = "00f067aa0ba902b7"
VALID = f"00-{VALID_TRACE}-{VALID_PARENT}-01"
_W3C = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

HOSTILE_TRACEPARENTS = [
    "",
    " ",
    "garbage",
    f"00-{'0' * 32}-{VALID_PARENT}-01",  # all-zero trace id
    f"00-{VALID_TRACE}-{'0' * 16}-01",  # all-zero parent id
    f"ff-{VALID_TRACE}-{VALID_PARENT}-01",  # version ff is forbidden
    f"00-{VALID_TRACE.upper()}-{VALID_PARENT}-01",  # upper-case hex
    f"00-{VALID_TRACE}-{VALID_PARENT}-01-extra",  # version 00 with more fields
    f"00-{VALID_TRACE[:-1]}g-{VALID_PARENT}-01",  # not hex
    f"00-{VALID_TRACE}-{VALID_PARENT}",  # no flags
    f"00-{VALID_TRACE}0-{VALID_PARENT}-01",  # trace id too long
    f"{VALID},{VALID}",  # a duplicated header, as WSGI joins it
    VALID + "\x00",
    VALID + "\udcff",
    "00-" + "a" * 100_000,
    "\u202e" + VALID,
    "<script>alert(1)</script>",
]


def is_valid(traceparent: str) -> bool:
    """A traceparent the W3C spec accepts for version 00 (non-zero ids)."""
    match = _W3C.match(traceparent)
    return bool(match) and int(match.group(1), 16) != 0 and int(match.group(2), 16) != 0


@pytest.fixture
def site(settings: Any) -> Iterator[Callable[..., CapturedSpans]]:
    """``site(trust)``: agentops_django set up (no writer) with TRUST_INCOMING_TRACEPARENT; spans captured."""
    stack: list[Any] = []

    def configure(trust: bool) -> CapturedSpans:
        settings.AGENTOPS = {"BATCH_INTERVAL": 0.05, "DATABASE_WRITER": False, "TRUST_INCOMING_TRACEPARENT": trust}
        setup.reset()
        setup.setup()
        capture = captured_spans()
        spans = capture.__enter__()
        stack.append(capture)
        return spans

    yield configure
    for capture in stack:
        capture.__exit__(None, None, None)
    setup.reset()


def request_spans(spans: CapturedSpans) -> list[Any]:
    return [s for s in spans if (s.attributes or {}).get("agentops.span.kind") == "request"]


def check_request(spans: CapturedSpans, trust: bool, headers: dict[str, str]) -> None:
    spans.clear()
    response = Client().get("/ping/", headers=headers)
    assert response.status_code == 200 and response.content == b"pong"
    found = request_spans(spans)
    assert len(found) == 1, [s.name for s in spans]
    span = found[0]
    traceparent = headers.get("traceparent")
    if trust and traceparent is not None and is_valid(traceparent):
        assert format(span.context.trace_id, "032x") == traceparent[3:35]
    else:
        assert span.parent is None, f"{traceparent!r} was not ignored (trust={trust})"
        assert format(span.context.trace_id, "032x") != VALID_TRACE


@pytest.mark.parametrize("trust", [True, False], ids=["trusted", "untrusted"])
@pytest.mark.parametrize("traceparent", HOSTILE_TRACEPARENTS, ids=range(len(HOSTILE_TRACEPARENTS)))
def test_hostile_traceparent_is_ignored_and_the_request_runs_normally(
    site: Callable[..., CapturedSpans], trust: bool, traceparent: str
) -> None:
    spans = site(trust)
    check_request(spans, trust, {"traceparent": traceparent, "tracestate": "x" * 10_000})


@pytest.mark.parametrize("trust", [True, False], ids=["trusted", "untrusted"])
def test_valid_traceparent_with_hostile_tracestate_and_baggage_still_runs(
    site: Callable[..., CapturedSpans], trust: bool
) -> None:
    spans = site(trust)
    for tracestate in ["", "=,=,=", "a=" + "b" * 100_000, ",".join(f"k{i}=v" for i in range(1000)), "\x00=\udcff"]:
        check_request(spans, trust, {"traceparent": VALID, "tracestate": tracestate, "baggage": tracestate + ";\x01"})


HEADER_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789abcdefABCDEF-", max_size=70),
    st.builds(
        lambda v, t, p, f: f"{v}-{t}-{p}-{f}",
        st.text(alphabet="0123456789abcdef", min_size=0, max_size=3),
        st.text(alphabet="0123456789abcdef", min_size=30, max_size=34),
        st.text(alphabet="0123456789abcdef", min_size=14, max_size=18),
        st.text(alphabet="0123456789abcdef", min_size=0, max_size=3),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trust=st.booleans(), traceparent=HEADER_TEXT, tracestate=st.text(max_size=300))
@example(trust=True, traceparent=VALID, tracestate="")
def test_property_any_traceparent_gives_a_normal_response_and_a_fresh_trace_unless_valid_and_trusted(
    site: Callable[..., CapturedSpans], trust: bool, traceparent: str, tracestate: str
) -> None:
    spans = site(trust)
    check_request(spans, trust, {"traceparent": traceparent, "tracestate": tracestate, "baggage": tracestate})


# --- a real server --------------------------------------------------------------------
def raw_request(port: int, header_lines: list[bytes]) -> tuple[int, bytes]:
    """Send a GET with exactly these header lines (bytes as they are) and read the answer."""
    with socket.create_connection((harness.LOOPBACK, port), timeout=30) as sock:
        request = b"GET /here/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        request += b"".join(line + b"\r\n" for line in header_lines) + b"\r\n"
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.slow
@pytest.mark.redis
def test_hostile_trace_headers_through_a_real_server(stack: Callable[..., Any], fault_log: Callable[..., None]) -> None:
    """Raw bytes on the wire to gunicorn (trusting traceparent): every answer is 200 and a fresh trace."""
    s = stack(agentops={"TRUST_INCOMING_TRACEPARENT": True})
    _, port = s.web()
    cases = {
        "duplicated": [b"traceparent: " + VALID.encode(), b"traceparent: " + VALID.encode()],
        "latin-1 bytes": [b"traceparent: 00-\xff\xfe-" + VALID_PARENT.encode() + b"-01"],
        "invalid utf-8 tracestate": [
            b"traceparent: 00-" + b"0" * 32 + b"-" + VALID_PARENT.encode() + b"-01",
            b"tracestate: \xc3\x28=\xa0\xa1",
        ],
        "huge": [b"traceparent: 00-" + b"a" * 7000],
        "all-zero": [b"traceparent: 00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01"],
        "huge baggage": [b"baggage: " + b"k=v," * 1500],
        # Control characters are refused by gunicorn itself (400) before Django sees them.
    }
    outcomes = {}
    for name, lines in cases.items():
        status, body = raw_request(port, lines)
        outcomes[name] = status
        assert status == 200, f"{name}: HTTP {status} {body[:200]!r}"
        assert json.loads(body)["trace_id"] != VALID_TRACE, f"{name}: an invalid header was trusted"
    # A valid, trusted header is still continued by the same server.
    status, body = raw_request(port, [b"traceparent: " + VALID.encode()])
    assert status == 200 and json.loads(body)["trace_id"] == VALID_TRACE
    fault_log(fault="hostile trace headers as raw bytes to gunicorn, TRUST on", outcomes=outcomes)


# --- Celery message headers -------------------------------------------------------------
CELERY_VALUES = [
    None,
    42,
    3.5,
    True,
    ["00", VALID_TRACE],
    {"traceparent": VALID},
    b"\xff\xfe" + VALID.encode(),
    bytearray(b"00-zz"),
    "x" * 1_000_000,
    f"00-{'0' * 32}-{'0' * 16}-00",
    f"00-{VALID_TRACE}-{VALID_PARENT}-zz",
    "\udcff" * 10,
    object(),
]


@pytest.mark.parametrize("value", CELERY_VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(CELERY_VALUES)])
def test_hostile_celery_trace_headers_run_the_task_in_a_fresh_trace(
    agentops_init: Callable[..., Any], value: Any
) -> None:
    """A task whose message carries a hostile traceparent/tracestate/published-at header runs in a trace of its own.

    The headers are set on a real Celery request (``push_request``) as a
    worker would, top level and nested, and the task runs through the
    signal handlers (``Task.__call__`` sends no signals, so prerun and postrun
    are sent the way the worker's tracer sends them).
    """
    from celery import signals

    from tests.faults.project import tasks

    agentops_init()
    was_connected = celery_signals.is_connected()
    celery_signals.connect()
    task = tasks.echo
    headers = {"traceparent": value, "tracestate": value, "agentops_published_at": value, "agentops_new_trace": value}
    try:
        with captured_spans() as spans:
            task.push_request(
                id="hostile-1", retries=value if isinstance(value, int) else 0, headers=headers, **headers
            )
            try:
                signals.task_prerun.send(sender=task, task_id="hostile-1", task=task, args=(1,), kwargs={})
                result = task.run(1)
                signals.task_postrun.send(
                    sender=task, task_id="hostile-1", task=task, args=(1,), kwargs={}, retval=result, state="SUCCESS"
                )
            finally:
                task.pop_request()
    finally:
        if not was_connected:
            celery_signals.disconnect()
    assert result["args"] == (1,)
    runs = [s for s in spans if (s.attributes or {}).get("agentops.span.kind") == "celery.task"]
    assert len(runs) == 1
    assert runs[0].parent is None, f"{value!r} was taken as a parent"
    assert format(runs[0].context.trace_id, "032x") == result["trace_id"]


@pytest.mark.slow
@pytest.mark.redis
def test_hostile_celery_headers_over_a_real_broker_to_a_real_worker(
    stack: Callable[..., Any], fault_log: Callable[..., None]
) -> None:
    """Messages published with hostile trace headers (any JSON type) run normally in fresh traces."""
    s = stack()
    s.worker(concurrency=2)
    values = [
        42,
        None,
        ["00", VALID_TRACE],
        {"traceparent": VALID},
        "x" * 200_000,
        f"00-{'0' * 32}-{'0' * 16}-01",
        f"00-{VALID_TRACE}-{VALID_PARENT}-zz",
        f"{VALID},{VALID}",
        "\udcff",
        True,
    ]
    outcomes = {}
    for i, value in enumerate(values):
        headers = {"traceparent": value, "tracestate": value, "agentops_published_at": value}
        result = s.celery.send_task("faults.echo", args=[1], headers=headers)
        outcome = result.get(timeout=60)
        outcomes[f"{i}:{repr(value)[:40]}"] = outcome["trace_id"] != VALID_TRACE and outcome["args"] == [1]
    # Hostile arguments through the real broker: huge, surrogates, markup; stored capped.
    huge = s.celery.send_task("faults.echo", args=["z" * 3_000_000, "\udcff<script>"], kwargs={"password": "pw-x"})
    assert len(huge.get(timeout=120)["args"][0]) == 3_000_000
    harness.wait_for(
        lambda: s.sql("SELECT count(*) FROM agentops_django_span WHERE attributes->>'celery.task.id' = %s", [huge.id])[
            0
        ][0],
        "the span of the task with huge arguments",
    )
    size, leaked = s.sql(
        "SELECT length(attributes::text), position('pw-x' in attributes::text) FROM agentops_django_span "
        "WHERE attributes->>'celery.task.id' = %s",
        [huge.id],
    )[0]
    fault_log(
        fault="hostile trace headers in real Celery messages (Redis); a task with 3 MB + surrogate arguments",
        outcomes=outcomes,
        huge_task_attributes_chars=size,
    )
    assert all(outcomes.values()), outcomes
    assert size < 200_000, "task arguments were stored without their size cap"
    assert leaked == 0, "a password argument reached the database"
