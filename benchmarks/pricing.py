"""The cost of pricing an LLM span (µs), next to the LLM call itself.

Usage::

    .venv/bin/python benchmarks/pricing.py              # a table
    .venv/bin/python benchmarks/pricing.py --json       # one JSON line of medians (µs)
    .venv/bin/python benchmarks/pricing.py --n 20000 --calls 400

Two measures:

* ``price_*``: :func:`agentops._pricing.cost_attributes` alone, on the
  attributes of typical finished calls (an OpenAI call with its service tier,
  an Anthropic call with cache reads and writes, a model priced by the user,
  an unknown model); ``genai_prices_calc`` is ``genai_prices.calc_price`` on
  the same OpenAI usage, what pricing would cost without agentops' compiled
  prices.
* ``llm_call_*``: a whole instrumented ``chat.completions.create`` to the
  stand-in server (another process, on loopback: the fastest an LLM call
  can be), priced by agentops, priced by a plain ``calc_price``, and not
  priced, in turn. ``pricing_inside_llm_call`` is the time agentops spends
  pricing within those calls (``calc_price_inside_llm_call`` the plain
  one's), and ``pricing_share_of_llm_call_pct`` its share of the call. A real
  provider answers in hundreds of milliseconds, so the same µs weigh a
  hundred times less there.

Every number is a median over ``--n`` (``--calls`` for whole calls) runs after
a warm-up; lookups and compiled prices are warm, as they are after a
process's first call of each model.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from agentops import semconv


class DiscardExporter(SpanExporter):
    """An exporter that drops what it is given."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def median_us(func: Callable[[], Any], n: int, warmup: int = 200) -> float:
    """The median time of ``func()`` over ``n`` calls, in µs."""
    for _ in range(min(warmup, n)):
        func()
    gc.collect()
    clock = time.perf_counter_ns
    timings = []
    for _ in range(n):
        t0 = clock()
        func()
        timings.append(clock() - t0)
    return statistics.median(timings) / 1000


OPENAI_CALL = {
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1_250,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 320,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1_024,
    semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
    semconv.OPENAI_RESPONSE_SERVICE_TIER: "default",
}
ANTHROPIC_CALL = {
    semconv.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-20250514",
    semconv.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-20250514",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 5_300,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 410,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 4_000,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 1_200,
    semconv.ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS: 0,
    semconv.ANTHROPIC_RESPONSE_SERVICE_TIER: "standard",
}
USER_PRICED_CALL = {
    semconv.GEN_AI_REQUEST_MODEL: "my-llama",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 900,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
}
UNKNOWN_CALL = {
    semconv.GEN_AI_REQUEST_MODEL: "someones-model",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 900,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 200,
}


def price_only(n: int) -> dict[str, float]:
    import logging

    import genai_prices

    from agentops import _pricing

    logging.getLogger("agentops").setLevel(logging.ERROR)  # the unknown model's one warning
    start_ns = time.time_ns()
    calls = {
        "price_openai": ("openai", OPENAI_CALL),
        "price_anthropic": ("anthropic", ANTHROPIC_CALL),
        "price_user_price": ("openai", USER_PRICED_CALL),
        "price_unknown_model": ("openai", UNKNOWN_CALL),
    }
    result = {}
    for name, (provider, attributes) in calls.items():
        result[name] = median_us(lambda p=provider, a=attributes: _pricing.cost_attributes(p, a, start_ns), n)
    usage = genai_prices.Usage(input_tokens=1_250, output_tokens=320, cache_read_tokens=1_024)
    when = dt.datetime.now(dt.UTC)

    def naive() -> Any:
        return genai_prices.calc_price(
            usage,
            "gpt-4o-mini-2024-07-18",
            provider_id="openai",
            genai_request_timestamp=when,
            price_context={"service_tier": "default"},
        )

    result["genai_prices_calc"] = median_us(naive, n)
    return result


@contextlib.contextmanager
def stand_in_process() -> Iterator[str]:
    """The stand-in LLM server as a separate process on a free loopback port; yields its base URL."""
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "agentops.testing.llm_server", "--port", "0"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def whole_calls(calls: int) -> dict[str, float]:
    """Whole instrumented calls, priced by agentops, by a plain ``calc_price``, and not at all, in turn.

    Taking turns lets a busy machine's drift hit every variant alike. Inside a
    real call, pricing runs with cold CPU caches (the HTTP client and the
    response parsing ran just before), so it takes several times what the
    ``price_*`` loops show.
    """
    import genai_prices
    import openai

    from agentops import _pricing

    real = _pricing.cost_attributes
    inside: dict[str, list[int]] = {"agentops": [], "calc_price": []}

    def priced(*args: Any) -> dict[str, Any]:
        t0 = time.perf_counter_ns()
        try:
            return real(*args)
        finally:
            inside["agentops"].append(time.perf_counter_ns() - t0)

    def calc_price(provider_id: str, attributes: Any, start_ns: int) -> dict[str, Any]:
        t0 = time.perf_counter_ns()
        usage = genai_prices.Usage(
            input_tokens=attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS],
            output_tokens=attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
            cache_read_tokens=attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS],
        )
        genai_prices.calc_price(
            usage,
            attributes[semconv.GEN_AI_RESPONSE_MODEL],
            provider_id=provider_id,
            genai_request_timestamp=dt.datetime.fromtimestamp(start_ns / 1e9, dt.UTC),
            price_context={"service_tier": attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER]},
        )
        inside["calc_price"].append(time.perf_counter_ns() - t0)
        return {}

    def unpriced(*args: Any) -> dict[str, Any]:
        return {}

    variants = {"priced": priced, "calc_price": calc_price, "unpriced": unpriced}
    timings: dict[str, list[int]] = {name: [] for name in variants}
    warmup = 30
    # The stand-in runs in a process of its own: in this one, its thread would
    # compete for the GIL while the client prices.
    with stand_in_process() as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        messages = [{"role": "user", "content": "hello there"}]
        try:
            for round_ in range(calls + warmup):
                for name, variant in variants.items():
                    _pricing.cost_attributes = variant  # type: ignore[assignment]
                    t0 = time.perf_counter_ns()
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=8)
                    if round_ >= warmup:
                        timings[name].append(time.perf_counter_ns() - t0)
        finally:
            _pricing.cost_attributes = real  # type: ignore[assignment]
            client.close()
    return {
        "llm_call_priced": statistics.median(timings["priced"]) / 1000,
        "llm_call_unpriced": statistics.median(timings["unpriced"]) / 1000,
        "pricing_inside_llm_call": statistics.median(inside["agentops"][warmup:]) / 1000,
        "calc_price_inside_llm_call": statistics.median(inside["calc_price"][warmup:]) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="runs of each pricing measure")
    parser.add_argument("--calls", type=int, default=400, help="runs of each whole-call measure")
    parser.add_argument("--json", action="store_true", help="print one JSON line of medians (µs)")
    args = parser.parse_args()

    import agentops

    agentops.init(
        auto_start_session=False,
        exporters=[SimpleSpanProcessor(DiscardExporter())],
        prices={"my-llama": {"input_mtok": 0.2, "output_mtok": 0.6}},
    )
    result = price_only(args.n)
    result.update(whole_calls(args.calls))
    result["pricing_share_of_llm_call_pct"] = 100 * result["pricing_inside_llm_call"] / result["llm_call_priced"]
    if args.json:
        print(json.dumps({key: round(value, 2) for key, value in result.items()}), flush=True)
        return
    print("median µs per LLM span")
    for key, value in result.items():
        unit = "%" if key.endswith("_pct") else "µs"
        print(f"  {key:<28} {value:>10.2f} {unit}")


if __name__ == "__main__":
    main()
