"""The duration histogram of the overview's rollup: fixed log-scaled buckets that add up exactly.

A duration of ``d`` milliseconds falls in bucket ``floor(log(d) / log(GROWTH))``
(clamped to ``LOWEST .. HIGHEST``); bucket ``i`` holds ``[GROWTH**i,
GROWTH**(i+1))`` and is read back as its geometric middle ``GROWTH**(i + 0.5)``.
With ``GROWTH = 2 ** 0.25`` a percentile read from the counts is within
:data:`RELATIVE_ERROR` (9.1 %) of the exact nearest-rank percentile of the same
durations, for every duration between :data:`FLOOR_MS` and :data:`CEILING_MS`.
Durations under :data:`FLOOR_MS` (4 microseconds) read back as 0; above
:data:`CEILING_MS` (about 4.7 hours) as that ceiling.

Because the buckets are the same everywhere, counts from any number of
processes, batches and minutes merge by addition: the rollup stays exact.
Framework-free: the writer and the overview page both use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GROWTH = 2**0.25
_LOG_GROWTH = math.log(GROWTH)
#: The lowest bucket: everything below ``GROWTH ** (LOWEST + 1)`` ms, read back as 0.
LOWEST = -32
#: The highest bucket: everything from ``GROWTH ** HIGHEST`` ms up.
HIGHEST = 96
FLOOR_MS = GROWTH ** (LOWEST + 1)
CEILING_MS = GROWTH**HIGHEST
#: The largest relative error of a percentile read from the buckets (``sqrt(GROWTH) - 1``).
RELATIVE_ERROR = math.sqrt(GROWTH) - 1


def bucket(duration_ms: float) -> int:
    """The bucket of a duration in milliseconds."""
    if not duration_ms >= FLOOR_MS:  # also NaN and negatives
        return LOWEST
    if duration_ms >= CEILING_MS:
        return HIGHEST
    index = math.floor(math.log(duration_ms) / _LOG_GROWTH)
    return min(max(index, LOWEST + 1), HIGHEST - 1)


def value(index: int) -> float:
    """What a bucket reads back as, in milliseconds."""
    if index <= LOWEST:
        return 0.0
    if index >= HIGHEST:
        return CEILING_MS
    return float(GROWTH ** (index + 0.5))


def percentile(counts: Mapping[int, int], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` of 1) of the durations counted per bucket.

    The exact percentile of ``n`` sorted durations is the one at rank
    ``ceil(fraction * n)``; this returns the middle of the bucket holding that
    rank, so it is within :data:`RELATIVE_ERROR` of the exact value.

    Returns:
        Milliseconds, or None when nothing was counted.
    """
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return value(index)
    return value(max(counts))


def exact_percentile(values: Iterable[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (what :func:`percentile` estimates)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
