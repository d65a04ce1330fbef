"""Turning arbitrary Python values into safe, redacted, size-capped JSON.

Recorded payloads (decorated calls' arguments and results, LLM messages, task
arguments) pass through :func:`to_json` exactly once, before any span
processor or exporter sees them. It never raises: recursive structures,
objects JSON cannot encode, bytes and lone surrogates all come out as a safe
representation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
# One encoder for all calls: json.dumps() builds a new one whenever it is given options.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_MAX_DEPTH = 12
_MAX_ITEMS = 200


_secret_patterns: dict[frozenset[str], re.Pattern[str]] = {}
_secret_keys: dict[tuple[str, frozenset[str]], bool] = {}


def _secret_pattern(redact_keys: frozenset[str]) -> re.Pattern[str]:
    pattern = _secret_patterns.get(redact_keys)
    if pattern is None:
        # A key is secret if it is one of the names, or ends with one after a
        # separator: "password" also masks "db_password" and "X-Api-Key".
        names = sorted({re.escape(k.lower().replace("-", "_")) for k in redact_keys}, key=len, reverse=True)
        body = "|".join(names) or r"(?!)"
        pattern = re.compile(rf"(?:^|.*[_.\-])(?:{body})$", re.IGNORECASE | re.DOTALL)
        if len(_secret_patterns) > 64:  # configurations change rarely; stay bounded anyway
            _secret_patterns.clear()
        _secret_patterns[redact_keys] = pattern
    return pattern


def is_secret_key(key: str, redact_keys: frozenset[str]) -> bool:
    """Whether values under ``key`` are masked.

    A key matches a redact key case-insensitively, with ``-`` and ``_`` treated
    alike, either whole or as its last part: with ``"password"`` in
    ``redact_keys``, ``"Password"``, ``"db_password"`` and ``"db-password"``
    are secret, ``"password_hint"`` is not.
    """
    if not redact_keys:
        return False
    # The same few keys (parameter names, headers) come back on every call.
    cache_key = (key, redact_keys)
    found = _secret_keys.get(cache_key)
    if found is None:
        found = _secret_pattern(redact_keys).match(key.replace("-", "_")) is not None
        if len(_secret_keys) >= 4096:
            _secret_keys.clear()
        _secret_keys[cache_key] = found
    return found


def _text(value: str, limit: int) -> str:
    if len(value) > limit:
        value = value[:limit]
    if value.isascii():
        return value
    # Lone surrogates cannot be encoded as UTF-8 by any exporter or database.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _plain(value: Any, redact: frozenset[str], limit: int, depth: int, seen: set[int]) -> Any:
    """A JSON-encodable copy of ``value`` with secrets masked."""
    kind = type(value)
    if kind is str:  # the common cases first, without isinstance chains
        return _text(value, limit)
    if kind is int or kind is bool or value is None:
        return value
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # NaN and infinities are not JSON; PostgreSQL's jsonb refuses them.
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _text(value, limit)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return f"<{len(raw)} bytes>"
    if depth >= _MAX_DEPTH:
        return f"<{type(value).__name__} nested too deep>"
    marker = id(value)
    if marker in seen:
        return f"<recursive {type(value).__name__}>"
    if kind is dict or isinstance(value, Mapping):
        seen.add(marker)
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= _MAX_ITEMS:
                out["..."] = f"{len(value) - _MAX_ITEMS} more"
                break
            name = _text(key if type(key) is str else repr(key), 200)
            if is_secret_key(name, redact):
                out[name] = REDACTED
            else:
                out[name] = _plain(item, redact, limit, depth + 1, seen)
        seen.discard(marker)
        return out
    if kind is list or kind is tuple or isinstance(value, list | tuple | set | frozenset):
        seen.add(marker)
        items = []
        for i, item in enumerate(value):
            if i >= _MAX_ITEMS:
                items.append(f"... {len(value) - _MAX_ITEMS} more")
                break
            items.append(_plain(item, redact, limit, depth + 1, seen))
        seen.discard(marker)
        return items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(
            {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)},
            redact,
            limit,
            depth,
            seen,
        )
    for method in ("model_dump", "dict", "to_dict"):
        dump = getattr(value, method, None)
        if callable(dump):
            try:
                dumped = dump()
            except Exception:
                continue
            if isinstance(dumped, Mapping):
                seen.add(marker)
                try:
                    return _plain(dumped, redact, limit, depth, seen)
                finally:
                    seen.discard(marker)
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} with failing repr>"
    return _text(text, limit)


def to_plain(value: Any, *, redact_keys: frozenset[str], max_size: int) -> Any:
    """Return a JSON-encodable, redacted copy of ``value``."""
    return _plain(value, redact_keys, max_size, 0, set())


def to_json(value: Any, *, redact_keys: frozenset[str], max_size: int) -> str:
    """Encode ``value`` as JSON, redacted and cut to at most ``max_size`` characters.

    Never raises. A cut payload ends with ``...[truncated N chars]`` (see
    :func:`truncate`); single strings longer than ``max_size`` are shortened
    first, so N counts the characters cut from the encoded text, not all
    that was left out.
    """
    try:
        text = _encoder.encode(_plain(value, redact_keys, max_size, 0, set()))
    except Exception as exc:
        text = json.dumps(f"<unserialisable: {type(exc).__name__}>")
    return truncate(text, max_size)


def truncate(text: str, max_size: int) -> str:
    """Cut ``text`` to at most ``max_size`` characters, ending with how much was cut.

    A cut text ends with ``...[truncated N chars]`` (inside the limit), so a
    reader knows; it is no longer valid JSON.
    """
    if len(text) <= max_size:
        return text
    longest_marker = len(f"...[truncated {len(text)} chars]")
    if max_size <= longest_marker:
        return text[:max_size]
    keep = max_size - longest_marker
    return f"{text[:keep]}...[truncated {len(text) - keep} chars]"


def redact_mapping(values: Mapping[str, Any], redact_keys: frozenset[str]) -> dict[str, Any]:
    """A shallow copy of ``values`` with secret keys masked (headers, kwargs)."""
    return {k: (REDACTED if is_secret_key(k, redact_keys) else v) for k, v in values.items()}
