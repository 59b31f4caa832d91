"""The one restricted unpickler: every global a pickle names is resolved by an allow function.

A pickle can name any importable object and call it while loading. A restricted unpickler
never imports what the file names: ``allow(module, name)`` returns the object to use (perhaps
a stand-in) or raises; each reader supplies its own rule (checkpoint layers, descriptor
arrays, a scan that only records the names).
"""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Callable
from typing import Any

Allow = Callable[[str, str], Any]


def restricted_unpickler(allow: Allow) -> type[pickle.Unpickler]:
    """An ``Unpickler`` class that resolves each global by ``allow(module, name)``.

    It is a class (not an instance) so that ``torch.load`` can subclass it, through
    `pickle_module`.
    """

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return allow(module, name)

    return RestrictedUnpickler


def loads(data: bytes, allow: Allow) -> Any:
    """Unpickle ``data`` with the globals ``allow`` lets through (its error propagates)."""
    return restricted_unpickler(allow)(io.BytesIO(data)).load()


def pickle_module(allow: Allow, name: str) -> types.ModuleType:
    """A module to pass as ``torch.load(..., pickle_module=...)``: its ``Unpickler`` and
    ``load`` resolve globals by ``allow``."""
    unpickler = restricted_unpickler(allow)
    module = types.ModuleType(name)
    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = lambda f, **kw: unpickler(f, **kw).load()  # type: ignore[attr-defined]
    return module
