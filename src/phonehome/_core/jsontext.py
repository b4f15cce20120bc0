"""JSON for the small files a run with consent on reads and writes, without ``json``.

``import json`` loads three pure-Python modules (decoder, scanner, encoder) that compile
regular expressions: about 5 M instructions of a small CLI's start-up (a sixth of all that
telemetry now adds to it). The work itself is done by the ``_json`` C accelerator that those
modules wrap, so this calls it directly, with what ``json.dumps`` and ``json.loads`` would
pass it. The output is the same, text for text (``tests/test_jsontext.py`` proves it on
generated values). Where the accelerator is missing or takes other arguments (another Python
implementation), it is ``json`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_WHITESPACE = " \t\n\r"


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Context:
    """What the C scanner reads from a ``json.JSONDecoder`` (``json.loads``'s defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _accelerated() -> (
    tuple[Callable[..., Any], Callable[[str], str], Callable[[str, int], tuple[Any, int]]] | None
):
    """The C encoder's maker, its string encoder and a scanner; ``None`` without them."""
    try:
        import _json

        scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # read by attribute
        encoder, strings = _json.make_encoder, _json.encode_basestring_ascii
        encoder(None, _refuse, strings, None, ":", ",", False, False, True)
    except (ImportError, AttributeError, TypeError):
        return None
    return encoder, strings, scan


_FAST = _accelerated()


def dumps(
    value: object,
    *,
    sort_keys: bool = False,
    compact: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """``json.dumps(value, sort_keys=..., separators=(",", ":") if compact, default=...)``."""
    separators = (",", ":") if compact else (", ", ": ")
    if _FAST is None:
        import json

        return json.dumps(value, sort_keys=sort_keys, separators=separators, default=default)
    make_encoder, strings, _ = _FAST
    encode = make_encoder(
        {},  # markers: a value that contains itself is refused, as json does
        _refuse if default is None else default,
        strings,
        None,
        separators[1],
        separators[0],
        sort_keys,
        False,
        True,
    )
    return "".join(encode(value, 0))


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``: raises ``ValueError`` on anything that is not one JSON value
    (bytes must be UTF-8)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if _FAST is None:
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _FAST[2](text, start)
    except StopIteration:
        raise ValueError(f"Expecting value: char {start}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value
