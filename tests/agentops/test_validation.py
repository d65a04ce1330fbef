"""``validate_trace_spans`` answers from what was recorded here, as AgentOps' answers from its service.

The spans of a trace this process exported are kept in a small bounded
record; an integration (agentops_django, from its database) can add a trace
source for spans other processes wrote. Usage follows AgentOps' example:
run the traced code, then ``validate_trace_spans(trace_context=...)`` and
``print_validation_summary(result)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import agentops
from agentops import _validation
from agentops.testing import CapturedSpans


@pytest.fixture(autouse=True)
def _forget_records() -> Iterator[None]:
    _validation.forget_recorded_spans()
    yield
    _validation.forget_recorded_spans()


def test_a_trace_with_an_llm_call_validates_with_its_token_metrics(spans: CapturedSpans, openai_client) -> None:
    trace_context = agentops.start_trace("validated")
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    agentops.end_trace(trace_context, "Success")

    result = agentops.validate_trace_spans(trace_context=trace_context)

    assert result["trace_id"] == trace_context.trace_id
    assert result["span_count"] == 2
    assert result["has_llm_spans"] is True
    assert result["llm_span_names"] == ["chat gpt-4o-mini"]
    metrics = result["metrics"]
    assert metrics["total_tokens"] == metrics["prompt_tokens"] + metrics["completion_tokens"] > 0
    assert {span["span_name"] for span in result["spans"]} == {"validated", "chat gpt-4o-mini"}


def test_a_trace_without_llm_calls_fails_unless_check_llm_is_off(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("no-llm")
    agentops.end_trace(trace_context)
    with pytest.raises(agentops.ValidationError, match="No LLM activity"):
        agentops.validate_trace_spans(trace_context=trace_context, max_retries=1)
    result = agentops.validate_trace_spans(trace_id=trace_context.trace_id, check_llm=False)
    assert result["span_count"] == 1
    assert result["has_llm_spans"] is False


def test_too_few_spans_fail_after_the_retries(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("short")
    agentops.end_trace(trace_context)
    with pytest.raises(agentops.ValidationError, match=r"after 2 attempts\. Expected at least 3 spans"):
        agentops.validate_trace_spans(
            trace_context=trace_context, check_llm=False, min_spans=3, max_retries=2, retry_delay=0
        )


def test_without_a_trace_id_the_current_spans_trace_is_validated(spans: CapturedSpans) -> None:
    @agentops.tool
    def step() -> None:
        pass

    with agentops.start_trace("current") as trace_context:
        step()
        result = agentops.validate_trace_spans(check_llm=False)
    assert result["trace_id"] == trace_context.trace_id
    assert [span["span_name"] for span in result["spans"]] == ["step.tool"]


def test_with_no_trace_at_all_it_is_a_value_error(spans: CapturedSpans) -> None:
    with pytest.raises(ValueError, match="No trace ID found"):
        agentops.validate_trace_spans()


def test_a_trace_source_adds_the_spans_other_processes_recorded(spans: CapturedSpans) -> None:
    trace_context = agentops.start_trace("web")
    agentops.end_trace(trace_context)

    def worker_spans(trace_id: str) -> list[dict[str, object]]:
        if trace_id != trace_context.trace_id:
            return []
        return [
            {
                "span_id": "00000000000000aa",
                "parent_span_id": trace_context.span_id,
                "span_name": "chat gpt-4o",
                "span_attributes": {
                    "agentops.span.kind": "llm",
                    "gen_ai.usage.input_tokens": 7,
                    "gen_ai.usage.output_tokens": 3,
                    "gen_ai.usage.cost": 0.5,
                },
                "status": "OK",
            }
        ]

    agentops.add_trace_source(worker_spans)
    try:
        result = agentops.validate_trace_spans(trace_context=trace_context)
    finally:
        agentops.remove_trace_source(worker_spans)
    assert result["span_count"] == 2
    assert result["metrics"] == {
        "total_tokens": 10,
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_cost": "0.5000",
    }


@pytest.mark.allow_internal_errors
def test_a_failing_trace_source_is_ignored(spans: CapturedSpans) -> None:
    def broken(trace_id: str) -> list[dict[str, object]]:
        raise RuntimeError("database down")

    trace_context = agentops.start_trace("t")
    agentops.end_trace(trace_context)
    agentops.add_trace_source(broken)
    try:
        result = agentops.validate_trace_spans(trace_context=trace_context, check_llm=False)
    finally:
        agentops.remove_trace_source(broken)
    assert result["span_count"] == 1
    assert agentops.counters()["internal_errors"] == 1


def test_the_record_keeps_the_latest_traces_only_and_no_payloads(
    spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_validation, "MAX_TRACES", 2)

    @agentops.tool
    def secret(password: str) -> str:
        return password

    contexts = []
    for name in ("one", "two", "three"):
        with agentops.start_trace(name) as trace_context:
            secret("hunter2")
        contexts.append(trace_context)
    assert _validation.recorded_spans(contexts[0].trace_id) == []
    kept = _validation.recorded_spans(contexts[2].trace_id)
    assert [span["span_name"] for span in kept] == ["secret.tool", "three"]
    assert "hunter2" not in str(kept)


def test_the_summary_prints_what_was_found(spans: CapturedSpans, capsys: pytest.CaptureFixture[str]) -> None:
    trace_context = agentops.start_trace("t")
    agentops.end_trace(trace_context)
    agentops.print_validation_summary(agentops.validate_trace_spans(trace_context=trace_context, check_llm=False))
    out = capsys.readouterr().out
    assert "Found 1 span(s)" in out
    assert "No LLM activity detected" in out
    assert "Total tokens: 0" in out
