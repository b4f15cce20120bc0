"""The JSON of the host's small files is ``json``'s, text for text, without importing it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonehome._core import jsontext

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=500, deadline=None)
@given(VALUES, st.booleans(), st.booleans())
def test_dumps_writes_what_json_writes(value: Any, sort_keys: bool, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    assert jsontext.dumps(value, sort_keys=sort_keys, compact=compact) == json.dumps(
        value, sort_keys=sort_keys, separators=separators
    )


@settings(max_examples=500, deadline=None)
@given(VALUES, st.sampled_from(["", " ", "\n", " \t\r\n "]))
def test_loads_reads_what_json_reads(value: Any, padding: str) -> None:
    text = padding + json.dumps(value, indent=1 if isinstance(value, dict) else None) + padding
    assert same(jsontext.loads(text), json.loads(text))
    assert same(jsontext.loads(text.encode()), json.loads(text))


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(st.text(max_size=40), st.text(alphabet='{}[]",:0123456789.eE+-tfnul \\', max_size=40))
)
def test_loads_refuses_what_json_refuses(text: str) -> None:
    """Any text: the same value, or a ValueError where json raises one."""
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            jsontext.loads(text)
        return
    assert same(jsontext.loads(text), expected)


def test_default_and_refusals_are_jsons() -> None:
    assert jsontext.dumps({"a": {1, 2}.__class__}, default=str) == json.dumps(
        {"a": set}, default=str
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": object()})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        jsontext.dumps(loop)
    with pytest.raises(ValueError):
        jsontext.loads(b"\xff{}")


def test_it_uses_the_accelerator_and_never_imports_json() -> None:
    code = (
        "import sys; from phonehome._core import jsontext; "
        "assert jsontext._FAST is not None; "
        "jsontext.loads(jsontext.dumps({'a': [1, 2.5, None]})); "
        "print(sorted(m for m in sys.modules if m == 'json' or m.startswith('json.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
