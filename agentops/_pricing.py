"""What an LLM call cost: the user's prices, then genai-prices' table, cached per model.

:func:`cost_attributes` turns the attributes of a finished call (provider,
models, token usage, service tier) into the cost attributes of its span. The
integrations call it just before the span ends, so every exporter, OTLP
included, carries the price:

* ``gen_ai.usage.total_cost`` (and ``gen_ai.usage.cost``, which the Django
  writer sums), ``gen_ai.usage.input_cost``/``output_cost``, where the price
  came from and the model it is for; or
* ``agentops.cost.unpriced`` and its reason, never a cost of 0, and the
  ``llm_calls_unpriced`` counter (:func:`agentops.counters`) goes up.

Prices given to ``agentops.init(prices=...)`` win; then comes `genai-prices
<https://github.com/pydantic/genai-prices>`_, Pydantic's maintained table
(dated model ids, cache reads and writes, prices that change over time or by
service tier). agentops uses the table bundled with the installed package and
never starts genai-prices' ``UpdatePrices``, so pricing makes no network
request. (An application that starts it itself gets the updated table for the
models agentops has not looked up yet: lookups are kept for the process.)

Cheap by construction: the table lookup is cached per (provider, model), hits
and misses alike, and so is the price in force (per service tier and set of
active date constraints); each distinct flat price is compiled once into an
exact affine function of the token counts, its coefficients read off
genai-prices' own calculation of a few probe usages and checked on one more.
Pricing a call then takes a few microseconds in a loop and some tens inside a
real call (cold caches), about a fifth of a plain ``calc_price``
(``benchmarks/pricing.py``); tiered prices, and usage outside the compiled
domain, take genai-prices' own path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from agentops import semconv
from agentops._guard import count
from agentops._state import state

logger = logging.getLogger(__name__)

#: The usage counts a price is applied to, in genai-prices' names (``input_tokens`` counts them all).
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_reasoning_tokens",
)
Counts = tuple[int, int, int, int, int, int]
Prices = tuple[Decimal, Decimal, Decimal]  # input, output, total

# Probe usages for compiling a flat price (see _Plan). The base is well inside
# the domain where genai-prices' calculation is affine; the check is not a
# multiple of it.
_PROBE_BASE: Counts = (10_000_000, 10_000_000, 1_000_000, 1_000_000, 100_000, 1_000_000)
_PROBE_STEP = 1_000
_PROBE_CHECK: Counts = (123_457, 65_537, 1_001, 313, 7, 99)
_MAX_CACHED = 4_096


class _Table:
    """The genai-prices names agentops uses, imported once (None when the package is missing)."""

    def __init__(self) -> None:
        import genai_prices
        from genai_prices.data_units import unit_data
        from genai_prices.types import ModelPrice, TieredPrices

        self.calc_price = genai_prices.calc_price
        self.Usage = genai_prices.Usage
        self.ModelPrice = ModelPrice
        self.TieredPrices = TieredPrices
        self.price_keys = frozenset(str(unit["price_key"]) for unit in unit_data.values())


_table: _Table | None = None
_table_loaded = False


def _get_table() -> _Table | None:
    global _table, _table_loaded
    if not _table_loaded:
        try:
            _table = _Table()
        except ImportError as exc:
            logger.warning("agentops: genai-prices is not installed (%s); LLM calls are priced only by prices=", exc)
        _table_loaded = True
    return _table


class _Plan:
    """A flat price as an exact affine function of the usage counts, per input/output/total.

    For prices without tiers, genai-prices' result is affine in the counts
    wherever no more specific count exceeds the one it is part of (cached
    tokens within input tokens...): each priced count is what is left of it
    once its more specific priced counts are taken away, times its price. So
    a constant and one coefficient per count, read off a base probe and one
    step per count, give the same Decimal that genai-prices computes.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Decimal, tuple[Decimal, ...]]]) -> None:
        # Per part, the constant and the (position, coefficient) of each count that costs something.
        self.rows = tuple(
            (constant, tuple((i, c) for i, c in enumerate(coefficients) if c)) for constant, coefficients in rows
        )

    def __call__(self, counts: Counts) -> Prices:
        parts = []
        for constant, terms in self.rows:
            value = constant
            for index, coefficient in terms:
                if counts[index]:
                    value += coefficient * counts[index]
            parts.append(value)
        return parts[0], parts[1], parts[2]

    @staticmethod
    def covers(counts: Counts) -> bool:
        """Whether the counts are in the domain where the plan equals genai-prices' calculation."""
        inputs, outputs, read, write, write_1h, reasoning = counts
        return min(counts) >= 0 and read + write <= inputs and write_1h <= write and reasoning <= outputs


def _calculate(table: _Table, model_price: Any, counts: Sequence[int]) -> Prices:
    """genai-prices' own calculation (raises ValueError for usage it finds inconsistent)."""
    result = model_price.calc_price(table.Usage(**dict(zip(USAGE_KEYS, counts, strict=True))))
    return result["input_price"], result["output_price"], result["total_price"]


def _compile(table: _Table, model_price: Any) -> _Plan | None:
    """The plan of a flat price, or None (tiers, or a probe genai-prices refuses or the plan misses)."""
    if any(isinstance(value, table.TieredPrices) for value in vars(model_price).values()):
        return None
    try:
        base = _calculate(table, model_price, _PROBE_BASE)
        steps = []
        for index in range(len(USAGE_KEYS)):
            probe = list(_PROBE_BASE)
            probe[index] += _PROBE_STEP
            steps.append(_calculate(table, model_price, probe))
        check = _calculate(table, model_price, _PROBE_CHECK)
    except ValueError:
        return None
    rows = []
    for part in range(3):
        coefficients = tuple((step[part] - base[part]) / _PROBE_STEP for step in steps)
        constant = base[part] - sum((c * n for c, n in zip(coefficients, _PROBE_BASE, strict=True)), Decimal(0))
        rows.append((constant, coefficients))
    plan = _Plan(rows)
    if plan(_PROBE_CHECK) != check:  # pragma: no cover - genai-prices changed its arithmetic
        logger.debug("agentops: price %r is not affine; using genai-prices' own calculation", model_price)
        return None
    return plan


#: A price ready to apply: genai-prices' ``ModelPrice`` and its plan (None for tiered prices).
Resolved = tuple[Any, "_Plan | None"]
_plans: dict[tuple[Any, ...], _Plan | None] = {}


def _resolve(table: _Table, model_price: Any) -> Resolved:
    """``model_price`` with its plan, compiled once per distinct price."""
    values = tuple(vars(model_price).items())
    if any(isinstance(value, table.TieredPrices) for _, value in values):
        return model_price, None
    try:
        plan = _plans[values]
    except KeyError:
        plan = _compile(table, model_price)
        if len(_plans) < _MAX_CACHED:
            _plans[values] = plan
    return model_price, plan


def _apply(table: _Table, resolved: Resolved, counts: Counts) -> Prices:
    """The price of ``counts``: through the compiled plan when it covers them, else genai-prices' calculation."""
    model_price, plan = resolved
    if plan is not None and plan.covers(counts):
        return plan(counts)
    return _calculate(table, model_price, counts)


# --- the user's prices -------------------------------------------------------------


class _UserPrices:
    """``Config.prices`` ready to match: exact names, then ``prefix*`` names, longest first."""

    def __init__(self, table: _Table, prices: Mapping[str, Mapping[str, float]]) -> None:
        self.exact: dict[str, Resolved] = {}
        self.prefixes: list[tuple[str, str, Resolved]] = []
        for name, amounts in prices.items():
            known = {}
            for key, amount in amounts.items():
                if key in table.price_keys:
                    known[key] = Decimal(repr(float(amount)))
                else:
                    logger.warning("agentops: price of %r: unknown key %r ignored (try input_mtok...)", name, key)
            if not known:
                continue
            resolved = _resolve(table, table.ModelPrice(**known))
            if name.endswith("*"):
                self.prefixes.append((name[:-1], name, resolved))
            else:
                self.exact[name] = resolved
        self.prefixes.sort(key=lambda entry: -len(entry[0]))

    def find(self, model: str) -> tuple[str, Resolved] | None:
        model = model.lower()
        found = self.exact.get(model)
        if found is not None:
            return model, found
        for prefix, name, resolved in self.prefixes:
            if model.startswith(prefix):
                return name, resolved
        return None


_user_prices: tuple[Mapping[str, Mapping[str, float]], _UserPrices] | None = None


def _get_user_prices(table: _Table) -> _UserPrices | None:
    global _user_prices
    config = state.config
    if config is None or not config.prices:
        return None
    cached = _user_prices
    if cached is not None and cached[0] is config.prices:
        return cached[1]
    compiled = _UserPrices(table, config.prices)
    _user_prices = (config.prices, compiled)
    return compiled


# --- genai-prices' table -----------------------------------------------------------


class _Entry:
    """genai-prices' model for one (provider, model name), with its prices as resolved so far.

    ``ModelInfo.get_prices(when, context)`` picks the price in force at
    ``when`` (its date and time constraints) for the request's context
    (service tier...). It depends on ``when`` only through those constraints,
    so its result is kept per context and per set of active constraints.
    """

    __slots__ = ("constraints", "info", "resolved", "variants")

    def __init__(self, provider: Any, info: Any) -> None:
        self.info = info
        # As genai-prices' ModelInfo.calc_price decides: variants (service tier,
        # speed) apply to the provider's own models, not to those it borrows.
        self.variants = bool(info.price_variants) and any(info is own for own in provider.models)
        conditional = info.prices if isinstance(info.prices, list) else ()
        self.constraints = tuple(
            c.constraint for c in (*conditional, *(info.price_variants or ())) if c.constraint is not None
        )
        self.resolved: dict[tuple[Any, ...], Resolved] = {}

    def prices(self, table: _Table, when: dt.datetime, context: Mapping[str, str] | None) -> Resolved:
        if not self.variants:
            context = None
        key = (
            tuple(sorted(context.items())) if context else (),
            tuple(constraint.active(when) for constraint in self.constraints),
        )
        found = self.resolved.get(key)
        if found is None:
            found = _resolve(table, self.info.get_prices(when, context))
            if len(self.resolved) < 64:
                self.resolved[key] = found
        return found


_models: dict[tuple[str, str], _Entry | None] = {}


def _lookup(table: _Table, provider_id: str, model: str) -> _Entry | None:
    """genai-prices' model for a model name, or None; cached, misses included."""
    key = (provider_id, model)
    try:
        return _models[key]
    except KeyError:
        pass
    found = None
    try:
        probe = table.calc_price(table.Usage(input_tokens=0, output_tokens=0), model, provider_id=provider_id)
    except LookupError:
        pass
    else:
        found = _Entry(probe.provider, probe.model)
    if len(_models) < _MAX_CACHED:
        _models[key] = found
    return found


def warm() -> None:
    """Import genai-prices and load its table now (tens of milliseconds), not on the first LLM call."""
    table = _get_table()
    if table is not None:
        _lookup(table, "openai", "gpt-4o-mini")


# --- a call's cost ---------------------------------------------------------------------


def _as_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_counts(attributes: Mapping[str, Any]) -> Counts | None:
    """The call's token counts from its span attributes, or None if it reported no input tokens."""
    inputs = attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)
    if not isinstance(inputs, int) or isinstance(inputs, bool):
        return None
    get = attributes.get
    return (
        _as_count(inputs),
        _as_count(get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)),
        _as_count(get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
        _as_count(get(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)),
        _as_count(get(semconv.ANTHROPIC_USAGE_CACHE_CREATION_1H_INPUT_TOKENS)),
        _as_count(get(semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)),
    )


def _price_context(attributes: Mapping[str, Any]) -> dict[str, str] | None:
    """What selects a price variant in genai-prices (``service_tier``, ``speed``)."""
    context = {}
    tier = attributes.get(semconv.OPENAI_RESPONSE_SERVICE_TIER) or attributes.get(
        semconv.ANTHROPIC_RESPONSE_SERVICE_TIER
    )
    if isinstance(tier, str):
        context["service_tier"] = tier
    speed = attributes.get(semconv.ANTHROPIC_RESPONSE_SPEED)
    if isinstance(speed, str):
        context["speed"] = speed
    return context or None


def _models_of(attributes: Mapping[str, Any]) -> list[str]:
    """The names to price by: the model that answered (often dated), then the one asked for."""
    names = []
    for key in (semconv.GEN_AI_RESPONSE_MODEL, semconv.GEN_AI_REQUEST_MODEL):
        name = attributes.get(key)
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


_warned: set[tuple[str, str]] = set()


def _unpriced(reason: str, provider_id: str = "", model: str = "") -> dict[str, Any]:
    count(semconv.COUNTER_UNPRICED_LLM_CALLS)
    if reason == semconv.UNPRICED_UNKNOWN_MODEL and (provider_id, model) not in _warned and len(_warned) < 256:
        _warned.add((provider_id, model))
        logger.warning(
            "agentops: no price known for %s model %r; its calls show cost unknown (give one with init(prices=...))",
            provider_id or "?",
            model,
        )
    return {semconv.AGENTOPS_COST_UNPRICED: True, semconv.AGENTOPS_COST_UNPRICED_REASON: reason}


def _priced(prices: Prices, source: str, model: str) -> dict[str, Any]:
    input_price, output_price, total_price = prices
    total = float(total_price)
    return {
        semconv.GEN_AI_USAGE_TOTAL_COST: total,
        semconv.GEN_AI_USAGE_COST: total,
        semconv.GEN_AI_USAGE_INPUT_COST: float(input_price),
        semconv.GEN_AI_USAGE_OUTPUT_COST: float(output_price),
        semconv.AGENTOPS_COST_SOURCE: source,
        semconv.AGENTOPS_COST_MODEL: model,
    }


def cost_attributes(provider_id: str, attributes: Mapping[str, Any], start_time_ns: int | None) -> dict[str, Any]:
    """The cost attributes of a finished LLM call.

    Args:
        provider_id: genai-prices' provider id (``"openai"``, ``"anthropic"``).
        attributes: The call span's attributes (models, ``gen_ai.usage.*``, service tier).
        start_time_ns: When the call started (epoch ns), to pick the price in force then.

    Returns:
        The cost attributes, or the unpriced marker and its reason (and the
        unpriced counter counted). Raises what genai-prices raises unexpectedly;
        callers run it inside the guard.
    """
    counts = usage_counts(attributes)
    if counts is None:
        return _unpriced(semconv.UNPRICED_NO_USAGE)
    models = _models_of(attributes)
    if not models:
        return _unpriced(semconv.UNPRICED_UNKNOWN_MODEL, provider_id)
    table = _get_table()
    if table is None:
        return _unpriced(semconv.UNPRICED_NO_PRICE_TABLE)
    user = _get_user_prices(table)
    if user is not None:
        for model in models:
            found = user.find(model)
            if found is not None:
                name, resolved = found
                try:
                    return _priced(_apply(table, resolved, counts), semconv.COST_SOURCE_USER, name)
                except ValueError:
                    return _unpriced(semconv.UNPRICED_INVALID_USAGE)
    for model in models:
        entry = _lookup(table, provider_id, model)
        if entry is not None:
            break
    else:
        return _unpriced(semconv.UNPRICED_UNKNOWN_MODEL, provider_id, models[-1])
    when = dt.datetime.fromtimestamp(start_time_ns / 1e9, dt.UTC) if start_time_ns else dt.datetime.now(dt.UTC)
    resolved = entry.prices(table, when, _price_context(attributes))
    try:
        return _priced(_apply(table, resolved, counts), semconv.COST_SOURCE_GENAI_PRICES, entry.info.id)
    except ValueError:
        return _unpriced(semconv.UNPRICED_INVALID_USAGE)


def reset() -> None:
    """Forget cached lookups, compiled prices and warnings (for tests)."""
    global _user_prices
    _models.clear()
    _plans.clear()
    _warned.clear()
    _user_prices = None
