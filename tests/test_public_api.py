"""The public surface is exactly what __all__ says (after httpx's test_exported_members)."""

from __future__ import annotations

from types import ModuleType

import phonehome
import phonehome.testing


def test_all_names_the_public_members() -> None:
    exported = sorted(phonehome.__all__)
    public = sorted(
        name
        for name, value in vars(phonehome).items()
        if name.isidentifier()
        and not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name not in {"annotations", "TYPE_CHECKING", "Any"}
    )
    lazy = set(phonehome._LAZY)
    assert sorted(set(public) | lazy) == [n for n in exported if n != "__version__"]
    for name in exported:
        assert getattr(phonehome, name) is not None


def test_testing_exports() -> None:
    for name in phonehome.testing.__all__:
        assert getattr(phonehome.testing, name) is not None


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    try:
        phonehome.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("expected AttributeError")
