"""Export of a stored trace as OTLP JSON (``…/trace/<id>/otlp.json``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from agentops_django.admin import _otlp as otlp_json
from tests.agentops_django.test_admin import make_chain_trace, make_trace

pytestmark = pytest.mark.django_db


def export(client, trace):
    response = client.get(reverse("admin:agentops_django_trace_otlp", args=[trace.pk]))
    assert response.status_code == 200
    return response, json.loads(response.content)


def all_spans(document):
    scopes = [scope for resource in document["resourceSpans"] for scope in resource["scopeSpans"]]
    return [span for scope in scopes for span in scope["spans"]]


def test_the_export_is_an_otlp_json_download_of_every_span(admin_client):
    chain = make_chain_trace()
    trace = chain["trace"]
    response, document = export(admin_client, trace)
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="trace-{trace.trace_id}.otlp.json"'
    spans = all_spans(document)
    assert len(spans) == 13
    assert {span["traceId"] for span in spans} == {trace.trace_id}
    assert document["resourceSpans"][0]["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "shop"}}
    ]


def test_exported_spans_keep_ids_parents_kinds_times_status_and_attributes(admin_client):
    chain = make_chain_trace()
    by_id = {span["spanId"]: span for span in all_spans(export(admin_client, chain["trace"])[1])}
    request, task, llm = by_id[chain["request"].span_id], by_id[chain["fetch"].span_id], by_id[chain["llm1"].span_id]
    assert "parentSpanId" not in request
    assert task["parentSpanId"] == chain["publish_fetch"].span_id
    assert (request["kind"], by_id[chain["publish_fetch"].span_id]["kind"], task["kind"], llm["kind"]) == (2, 4, 5, 3)
    started = chain["request"].started_at
    assert request["startTimeUnixNano"] == str(int(started.timestamp()) * 10**9 + started.microsecond * 1000)
    assert int(request["endTimeUnixNano"]) - int(request["startTimeUnixNano"]) == 140_000_000
    attributes = {item["key"]: item["value"] for item in llm["attributes"]}
    assert attributes["gen_ai.usage.input_tokens"] == {"intValue": "812"}
    assert attributes["gen_ai.usage.cost"] == {"doubleValue": 0.0015}
    assert attributes["gen_ai.request.model"] == {"stringValue": "gpt-4o-mini"}
    failed = by_id[chain["notify"].span_id]
    assert failed["status"] == {"code": 2, "message": "ConnectionRefusedError: [Errno 111] Connection refused"}
    assert failed["events"][0]["name"] == "exception"
    assert int(failed["events"][0]["timeUnixNano"]) > int(failed["startTimeUnixNano"])


def test_links_are_exported_with_their_trace_and_span_ids(admin_client):
    target = make_trace("target")
    chain = make_chain_trace(linked=target)
    by_id = {span["spanId"]: span for span in all_spans(export(admin_client, chain["trace"])[1])}
    (link,) = by_id[chain["notify"].span_id]["links"]
    assert link["traceId"] == target.trace_id and len(link["spanId"]) == 16


def test_the_export_opens_by_trace_id_too(admin_client):
    trace = make_trace("by id")
    response = admin_client.get(reverse("admin:agentops_django_trace_otlp", args=[trace.trace_id]))
    assert json.loads(response.content) == {"resourceSpans": []}


def test_the_export_of_an_unknown_trace_is_404(admin_client):
    assert admin_client.get(reverse("admin:agentops_django_trace_otlp", args=["0" * 32])).status_code == 404


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, {"boolValue": True}),
        (3, {"intValue": "3"}),
        (2.5, {"doubleValue": 2.5}),
        ("x", {"stringValue": "x"}),
        (["a", 1], {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}),
        ({"k": "v"}, {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}),
    ],
)
def test_attribute_values_become_otlp_any_values(value, expected):
    assert otlp_json.any_value(value) == expected


def test_times_are_nanoseconds_since_the_epoch_from_datetimes_iso_strings_and_numbers():
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    expected = str(int(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp()) * 10**9 + 123456000)
    assert otlp_json.unix_nano(when) == expected
    assert otlp_json.unix_nano(when.isoformat()) == expected
    assert otlp_json.unix_nano(int(expected)) == expected
    assert otlp_json.unix_nano("garbage") == "0"


@pytest.mark.django_db
def test_the_export_gives_each_span_its_recorded_opentelemetry_kind() -> None:
    """A tool that is an OTel CLIENT span exports as CLIENT (the kind is stored, not guessed from 'tool')."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    from agentops_django.models import Span
    from agentops_django.testing import store_spans

    context = SpanContext(0xABC, 0x1, is_remote=False, trace_flags=TraceFlags(1))
    tool = ReadableSpan(
        "search.tool", context, None, Resource.create({}), {"agentops.span.kind": "tool"},
        kind=SpanKind.CLIENT, start_time=1, end_time=2,
    )  # fmt: skip
    store_spans([tool])
    row = Span.objects.values().get(span_id=format(1, "016x"))
    assert row["otel_kind"] == "CLIENT"
    assert otlp_json.otlp_span(row, format(0xABC, "032x"))["kind"] == otlp_json.SPAN_KIND_CLIENT
    # Rows stored before the kind was: still guessed from the agentops kind.
    assert otlp_json.otlp_span({**row, "otel_kind": "", "kind": "request"}, "0" * 32)["kind"] == 2
