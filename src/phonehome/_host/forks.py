"""Recording across ``os.fork()``: a child records on its own and hands over when it exits.

Hooked once, when the first recording starts (``os.register_at_fork``), with weak references
to the live recordings:

- in the child, each recording starts over (:meth:`Forkable.forked`): an empty buffer (the
  parent spools what it recorded), ids of its own, fresh locks, no service thread (threads do
  not survive a fork);
- the child's records are spooled, and a sender started in CLI mode, when it exits normally
  (:meth:`Forkable.end_child`): through its ``with`` block, by ``atexit`` for a child that
  returns or calls ``sys.exit``, and by a ``multiprocessing`` finalizer for a ``Pool`` or
  ``Process`` worker, which leaves through ``os._exit`` once its finalizers have run (a
  worker drops the finalizers it inherits as it starts, so the parent asks multiprocessing,
  if it is loaded, to register ours in each worker).

A child that ends with ``os._exit`` of its own, or is killed (``SIGKILL``, ``SIGTERM``, which
``Pool.terminate()`` and leaving a ``with Pool()`` block send), loses what it had not spooled:
at most ``MAX_BUFFERED`` records (docs/delivery.md).

A process that leaves through ``os._exit`` (mypy's ``hard_exit``, which skips the
interpreter's shutdown) runs what :func:`on_hard_exit` registered in it first: an
integration's run ends its command with that exit code and hands over, as its block would.
"""

from __future__ import annotations

import os
import sys
from _weakref import ref  # loaded with the interpreter, where weakref and _weakrefset are not

from phonehome._core.diagnostics import record_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NoReturn, Protocol

    class Forkable(Protocol):
        def forked(self) -> None:
            """In the child: start over."""

        def end_child(self) -> None:
            """The child exits normally: spool what it recorded and hand it over (once)."""


class _Weak:
    """A set that does not keep its members alive (``weakref.WeakSet``'s part used here)."""

    __slots__ = ("_refs",)

    def __init__(self) -> None:
        self._refs: dict[int, ref[Forkable]] = {}

    def add(self, item: Forkable) -> None:
        key, refs = id(item), self._refs
        if key in refs and refs[key]() is item:
            return

        def gone(dead: ref[Forkable]) -> None:
            if refs.get(key) is dead:
                del refs[key]

        refs[key] = ref(item, gone)

    def discard(self, item: Forkable) -> None:
        if item in self:
            del self._refs[id(item)]

    def __contains__(self, item: object) -> bool:
        found = self._refs.get(id(item))
        return found is not None and found() is item

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[Forkable]:
        return iter([item for r in list(self._refs.values()) if (item := r()) is not None])


_live = _Weak()
_in_workers = _Weak()
"""Recordings multiprocessing already runs :func:`_worker` for, in each new worker."""
_hooked = False
_exit_hook_pid = 0


def track(recording: Forkable) -> None:
    """Follow ``recording`` into the children of forks, until :func:`forget`."""
    global _hooked
    if not _hooked and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before, after_in_child=_in_child)
        _hooked = True
    _live.add(recording)


def forget(recording: Forkable) -> None:
    _live.discard(recording)


def _before() -> None:
    util: Any = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    for recording in list(_live):
        if recording not in _in_workers:
            try:
                util.register_after_fork(recording, _worker)
                _in_workers.add(recording)
            except Exception as error:
                record_error("fork", error)


def _in_child() -> None:
    global _exit_hook_pid
    for recording in list(_live):
        try:
            recording.forked()
        except Exception as error:
            record_error("fork", error)
    if _live and _exit_hook_pid != os.getpid():
        import atexit

        atexit.register(_at_exit)
        _exit_hook_pid = os.getpid()


def _at_exit() -> None:
    for recording in list(_live):
        try:
            recording.end_child()
        except Exception as error:
            record_error("fork exit", error)


def _worker(recording: Forkable) -> None:
    """In a multiprocessing worker, after it dropped the finalizers it inherited."""
    util: Any = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(recording, recording.end_child, exitpriority=10)


# -- leaving through os._exit --------------------------------------------------------------
_hard_exits: list[tuple[int, Callable[[int], object]]] = []
"""What to run if the process calls ``os._exit``, each with the process it belongs to."""
_real_exit: Callable[[int], NoReturn] | None = None


def on_hard_exit(callback: Callable[[int], object]) -> Callable[[], None]:
    """Run ``callback(code)`` if this process leaves through ``os._exit`` while it is
    registered (the newest first); returns what unregisters it. ``os._exit`` is wrapped the
    first time, and stays so: a child of a fork runs none of its parent's callbacks."""
    global _real_exit
    if _real_exit is None:
        _real_exit = os._exit
        os._exit = _hard_exit
    entry = (os.getpid(), callback)
    _hard_exits.append(entry)

    def unregister() -> None:
        if entry in _hard_exits:
            _hard_exits.remove(entry)

    return unregister


def _hard_exit(status: int) -> NoReturn:
    pid = os.getpid()
    while _hard_exits:
        owner, callback = _hard_exits.pop()
        if owner == pid:
            try:
                callback(status)
            except BaseException as error:  # the exit goes on, whatever happens here
                record_error("hard exit", error)
    assert _real_exit is not None
    _real_exit(status)
