"""Fuzzing the command's JSON input: any text gives records or a CLIError, nothing else.

Hypothesis writes token files, JSON Lines and ``--data`` text: valid JSON
values (deep, wide, with huge numbers and odd strings), JSON broken at random
places, and text that is no JSON at all. Reading them must return records
within the documented limits or raise :class:`~workflow.cli._context.CLIError`
— never ``RecursionError``, ``ValueError`` or another traceback — and every
record returned must be storable by the store's codec.

``WORKFLOW_FUZZ_EXAMPLES=N`` runs N examples per test (CI runs a few hundred).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow.cli._context import CLIError
from workflow.cli._inputs import parse_json, read_tokens
from workflow.storage import JSONCodec

EXAMPLES = int(os.environ.get("WORKFLOW_FUZZ_EXAMPLES") or 300)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("WORKFLOW_FUZZ_EXAMPLES"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**1200), max_value=10**1200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=40,
)


@st.composite
def deep(draw: st.DrawFn) -> str:
    """JSON text nested at a random depth, around the limit and far past it."""
    depth = draw(st.sampled_from([1, 30, 31, 32, 33, 200, 3000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
    return opener * depth + draw(st.sampled_from(["1", "[]", "{}", '"x"'])) + closer * depth


@st.composite
def broken(draw: st.DrawFn) -> str:
    """Valid JSON cut, doubled or spliced at random places."""
    text = json.dumps(draw(values))
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    how = draw(st.sampled_from(["cut", "splice", "nan", "double"]))
    if how == "cut":
        return text[:cut]
    if how == "splice":
        return text[:cut] + draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "]"]))
    if how == "nan":
        return text.replace("1", "NaN", 1)
    return text + text


documents = st.one_of(values.map(json.dumps), deep(), broken(), st.text(max_size=60))


def assert_storable(records: list[Any]) -> None:
    codec = JSONCodec()
    for record in records:
        codec.dumps(record)


@FUZZ
@given(text=documents)
def test_data_gives_a_value_or_a_cli_error(text: str) -> None:
    try:
        value = parse_json(text, "--data")
    except CLIError as error:
        refused = str(error)
    else:
        assert_storable([value])
        return
    assert refused.startswith("--data")


@FUZZ
@given(texts=st.lists(documents, min_size=1, max_size=4), lines=st.booleans())
def test_token_files_give_records_or_a_cli_error(
    tmp_path_factory: Any, texts: list[str], lines: bool
) -> None:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    if lines:
        path = folder / "tokens.jsonl"
        path.write_text("\n".join(text.replace("\n", " ") for text in texts) + "\n")
    else:
        path = folder / "tokens.json"
        path.write_text(texts[0])
    try:
        records = read_tokens(str(path))
    except CLIError as error:
        refused = str(error)
    else:
        assert isinstance(records, list)
        assert_storable(records)
        return
    assert refused.startswith(str(path))


def test_lone_surrogates_are_refused_with_their_path(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"ok": "\\ud83d\\ude00"}\n{"a": ["\\ud800"]}\n')
    with pytest.raises(CLIError, match=r"line 2 \(token 1\): \$\.a\[0\]: a string with a lone"):
        read_tokens(str(tmp_path / "t.jsonl"))
    with pytest.raises(CLIError) as refused:
        parse_json('{"k": {"\\udc00x": 1}}', "--data")
    message = str(refused.value)
    assert message.startswith('--data: $.k["\\udc00x"]: its key is a string with a lone')
    message.encode("utf-8")  # printable as it is
