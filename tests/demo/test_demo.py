"""The one-command demo works end to end: ``python demo.py --once`` exits 0 with every trace complete.

Each test runs the real thing as a user would (web server, prefork Celery
worker, Celery beat, stand-in LLM server, requests over HTTP), in a data
folder of its own, and then looks for any process the demo left behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("ask #1", "ask #2", "ask #3", "stream", "digest")
#: A database of its own on the shared PostgreSQL server.
PG_URL = os.environ.get("AGENTOPS_TEST_DEMO_PG", "postgres://postgres@127.0.0.1:5432/agentops_demo_test")
#: A Redis database number no other test session uses.
REDIS_URL = os.environ.get("AGENTOPS_TEST_DEMO_REDIS", "redis://127.0.0.1:6379/14")
#: Seconds the whole demo may take before the test stops it (a hang, not a speed check).
RUN_TIMEOUT = 240

pytestmark = pytest.mark.slow


def _processes_with_env(marker: str) -> list[str]:
    """Command lines of live processes whose environment contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def run_demo(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``demo.py --once`` with this interpreter (the project's venv) and its own data folder."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CELERY_", "DATABASE_URL"))}
    environ.update(DEMO_DATA_DIR=str(data_dir), **env)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "demo.py"), "--once", *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the demo stop what it started; kill only if it cannot.
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"demo.py --once did not finish within {RUN_TIMEOUT} s:\n{output}")
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def assert_no_process_left(data_dir: Path) -> None:
    if Path("/proc").is_dir():
        deadline = time.monotonic() + 10
        while (left := _processes_with_env(str(data_dir))) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"the demo left processes running: {left}"


def assert_demo_succeeded(result: subprocess.CompletedProcess[str], data_dir: Path) -> None:
    output = result.stdout
    assert result.returncode == 0, output
    assert re.search(r"what\s+spans\s+tokens\s+duration\s+status\s+check", output), output
    for label in LABELS:
        row = re.search(rf"^\s+{re.escape(label)}\s+(.+)$", output, re.MULTILINE)
        assert row is not None, f"no table row for {label}:\n{output}"
        assert row.group(1).rstrip().endswith("complete"), f"{label} is not complete:\n{output}"
        link = re.search(
            rf"^\s+{re.escape(label)}\s+/admin/agentops_django/trace/[0-9a-f]{{32}}/change/$", output, re.M
        )
        assert link is not None, f"no admin link for {label}:\n{output}"
    assert "All 5 traces are complete." in output, output
    # Beat first, the LLM server last: no task finishing during shutdown loses its LLM server.
    assert "==> stopping beat, then web and worker, then llm" in output, output
    assert "all stopped" in output, output
    worker_log = (data_dir / "logs" / "worker.log").read_text()
    assert "raised unexpected" not in worker_log, worker_log
    assert_no_process_left(data_dir)


def assert_every_llm_call_priced_by_genai_prices(database: Path) -> None:
    """Each stored LLM call's cost is genai-prices' own ``calc_price`` of its tokens; the streamed one has a TTFT."""
    import datetime as dt
    import json
    import math
    import sqlite3

    import genai_prices

    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT name, attributes, started_at FROM agentops_django_span WHERE kind = 'llm'"
        ).fetchall()
    assert rows, "the demo stored no LLM call"
    streamed = 0
    for name, text, started_at in rows:
        attributes = json.loads(text)
        usage = genai_prices.Usage(
            input_tokens=attributes["gen_ai.usage.input_tokens"],
            output_tokens=attributes["gen_ai.usage.output_tokens"],
            cache_read_tokens=attributes.get("gen_ai.usage.cache_read.input_tokens"),
            output_reasoning_tokens=attributes.get("gen_ai.usage.reasoning.output_tokens"),
        )
        model = attributes.get("gen_ai.response.model") or attributes["gen_ai.request.model"]
        when = dt.datetime.fromisoformat(started_at).replace(tzinfo=dt.UTC)
        price = genai_prices.calc_price(
            usage, model, provider_id=attributes["gen_ai.system"], genai_request_timestamp=when
        )
        assert math.isclose(attributes["gen_ai.usage.total_cost"], float(price.total_price)), (name, attributes)
        if attributes.get("gen_ai.request.stream"):
            streamed += 1
            assert attributes["gen_ai.streaming.time_to_first_token"] > 0, (name, attributes)
    assert streamed >= 1, "the demo's streamed answer stored no streamed LLM call"


def test_demo_once_runs_every_trace_whole_on_the_embedded_defaults(tmp_path: Path) -> None:
    """With no server at all (SQLite, filesystem broker, file results), ``demo.py --once`` exits 0.

    Its table lists the three asking requests, the streamed answer and the beat
    digest, each complete (one tree, every task run and LLM call there) with
    its admin link; no task failed on the way out; each log holds this run
    only; and no process it started is left running. Every LLM call it stored
    costs what genai-prices computes for its tokens, and the streamed one has
    its time to first token.
    """
    data_dir = tmp_path / "demo-data"
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "logs" / "web.log").write_text("a line from an earlier run\n")
    result = run_demo(data_dir)
    assert_demo_succeeded(result, data_dir)
    assert "database sqlite, broker filesystem, result backend file" in result.stdout
    assert "earlier run" not in (data_dir / "logs" / "web.log").read_text()
    assert_every_llm_call_priced_by_genai_prices(data_dir / "demo.sqlite3")


def test_demo_on_a_busy_port_says_so_first_and_starts_nothing(tmp_path: Path) -> None:
    """``--port`` naming a port another program listens on fails at once, with the cause on the first line."""
    data_dir = tmp_path / "demo-data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_demo(data_dir, "--port", str(port))
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[0] == f"error: port {port} on 127.0.0.1 is already in use (Address already in use).", result.stdout
    assert "--port" in lines[1], result.stdout
    assert "starting" not in result.stdout and "stopping" not in result.stdout, result.stdout
    assert not (data_dir / "logs").exists()
    assert_no_process_left(data_dir)


def _create_database(url: str) -> None:
    """A new, empty database each run: what an earlier run (or release) left there must not matter."""
    import psycopg

    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


@pytest.mark.postgres
@pytest.mark.redis
def test_demo_once_runs_every_trace_whole_on_postgresql_and_redis(tmp_path: Path) -> None:
    """``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch the demo to real servers, and it still exits 0."""
    import redis

    _create_database(PG_URL)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    data_dir = tmp_path / "demo-data"
    try:
        result = run_demo(data_dir, DATABASE_URL=PG_URL, CELERY_BROKER_URL=REDIS_URL)
    finally:
        client.flushdb()
        client.close()
    assert_demo_succeeded(result, data_dir)
    assert "database postgresql, broker redis, result backend redis" in result.stdout
