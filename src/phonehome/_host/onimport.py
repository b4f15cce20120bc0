"""Running something right after the host imports a module, without importing it first.

The logging bridge uses it: a CLI that never logs never loads ``logging`` (about a fifth of
the consent-on path's import time in a minimal CLI), and one that imports it after
``instrument()`` gets its warnings recorded from then on.
"""

from __future__ import annotations

import sys

from phonehome._core.diagnostics import record_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class OnImport:
    """A meta path finder that runs ``then()`` right after the host imports ``name``, and
    steps aside: the first time, or at ``close()``. The module is found and loaded as it
    would be without it."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self.name:
            return None
        self.close()
        try:
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Then(spec.loader, self.then)  # type: ignore[assignment]
        except Exception as error:
            record_error("logging bridge", error)
            return None
        return spec

    def close(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _Then:
    """A loader that runs ``then()`` after the real loader executed the module."""

    def __init__(self, loader: Any, then: Callable[[], None]) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            self._then()
        except Exception as error:
            record_error("logging bridge", error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
