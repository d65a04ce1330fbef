"""Specification of payload serialisation: safe, redacted, size-capped JSON that never raises."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentops._config import DEFAULT_REDACT_KEYS
from agentops._serialize import REDACTED, is_secret_key, redact_mapping, to_json, truncate

SECRETS = frozenset(DEFAULT_REDACT_KEYS)


def encode(value: object, max_size: int = 10_000) -> object:
    return json.loads(to_json(value, redact_keys=SECRETS, max_size=max_size))


def test_plain_values_come_out_as_the_same_json() -> None:
    value = {"a": [1, 2.5, True, None, "x"], "b": {"c": "d"}}
    assert encode(value) == value


def test_tuples_and_sets_become_lists() -> None:
    assert encode((1, 2)) == [1, 2]
    assert encode({3}) == [3]


@pytest.mark.parametrize(
    "key",
    ["api_key", "API_KEY", "password", "Authorization", "openai_api_key", "db-password", "X-Api-Key", "csrf_token"],
)
def test_values_under_secret_keys_are_masked_at_any_depth(key: str) -> None:
    assert encode({"outer": [{key: "s3cr3t"}]}) == {"outer": [{key: REDACTED}]}


@pytest.mark.parametrize("key", ["max_tokens", "password_hint", "monkey", "secretary_name", "name"])
def test_ordinary_keys_are_not_masked(key: str) -> None:
    assert encode({key: "v"}) == {key: "v"}


def test_is_secret_key_matches_whole_keys_or_their_last_part() -> None:
    assert is_secret_key("db_password", SECRETS)
    assert not is_secret_key("password_hint", SECRETS)
    assert not is_secret_key("anything", frozenset())


def test_redact_mapping_masks_secret_keys_of_a_flat_mapping() -> None:
    assert redact_mapping({"Authorization": "Bearer x", "Accept": "json"}, SECRETS) == {
        "Authorization": REDACTED,
        "Accept": "json",
    }


def test_output_past_max_size_is_cut_within_the_limit_and_says_how_much_was_cut() -> None:
    text = to_json("x" * 500, redact_keys=SECRETS, max_size=100)
    kept, marker = text.split("...")
    assert len(text) <= 100
    assert kept == '"' + "x" * (len(kept) - 1)
    assert re.fullmatch(r"\[truncated \d+ chars\]", marker)


def test_truncate_leaves_short_text_alone_and_cuts_long_text_to_the_limit() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("a" * 100, 40) == "a" * 16 + "...[truncated 84 chars]"
    assert truncate("a" * 100, 5) == "aaaaa"


def test_recursive_structures_are_cut_at_the_cycle() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert encode(loop) == [1, "<recursive list>"]


def test_deep_nesting_is_cut() -> None:
    deep: object = "bottom"
    for _ in range(50):
        deep = [deep]
    text = to_json(deep, redact_keys=SECRETS, max_size=10_000)
    assert "nested too deep" in text


def test_long_collections_keep_the_first_items_and_count_the_rest() -> None:
    assert encode(list(range(1000)))[-1] == "... 800 more"


def test_bytes_are_described_not_dumped() -> None:
    assert encode(b"\x00\x01secret") == "<8 bytes>"


def test_non_finite_floats_become_strings_so_the_output_is_strict_json() -> None:
    assert encode([math.nan, math.inf, -math.inf]) == ["nan", "inf", "-inf"]


def test_lone_surrogates_are_escaped_so_the_output_encodes_as_utf8() -> None:
    text = to_json({"k": "bad \udc80 text"}, redact_keys=SECRETS, max_size=1000)
    text.encode("utf-8")
    assert "\\\\udc80" in text


def test_dataclasses_and_model_dump_objects_become_objects_with_secrets_masked() -> None:
    @dataclasses.dataclass
    class Request:
        url: str
        api_key: str

    class Model:
        def model_dump(self) -> dict[str, object]:
            return {"name": "m", "password": "p"}

    assert encode(Request("u", "k")) == {"url": "u", "api_key": REDACTED}
    assert encode(Model()) == {"name": "m", "password": REDACTED}


def test_other_objects_are_recorded_by_repr_even_when_repr_fails() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class Plain:
        def __repr__(self) -> str:
            return "<Plain>"

    assert encode([Plain(), Broken()]) == ["<Plain>", "<Broken with failing repr>"]


def test_non_string_keys_are_recorded_by_repr() -> None:
    assert encode({1: "a", (2, 3): "b"}) == {"1": "a", "(2, 3)": "b"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values, max_size=st.integers(min_value=64, max_value=500))
def test_any_value_serialises_without_raising_to_valid_utf8_within_the_cap(value: object, max_size: int) -> None:
    text = to_json(value, redact_keys=SECRETS, max_size=max_size)
    text.encode("utf-8")
    assert len(text) <= max_size
    if "...[truncated" not in text:
        json.loads(text)
