"""Read descriptor pickles with a restricted unpickler (numpy arrays, pandas frames only).

Pickles can run code when loaded. This unpickler resolves only numpy / pandas / pyarrow
classes and the handful of functions their own pickles call to rebuild themselves, plus plain
builtins; anything else (``os.system``, ``builtins.eval``, another package's class) is refused
with `BadInput`. It narrows the risk, it does not remove it: load descriptor pickles only from
sources you trust (as the seeds' own ``.pickle`` files), and prefer ``.npy`` or parquet.
"""

from __future__ import annotations

import collections
import copyreg
import importlib

from core import pickles
from core.errors import BadInput

_ROOTS = ("numpy", "pandas", "pyarrow")
_FUNCTIONS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pyarrow.lib", "_restore_array"),
    ("pyarrow.lib", "py_buffer"),
    ("pyarrow.lib", "type_for_alias"),
}
_BUILTINS = {
    "bytearray": bytearray,
    "slice": slice,
    "set": set,
    "frozenset": frozenset,
    "complex": complex,
    "range": range,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "object": object,
}


def _allowed_global(module: str, name: str) -> object:
    if module == "builtins" and name in _BUILTINS:
        return _BUILTINS[name]
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    if (module, name) == ("copyreg", "_reconstructor"):
        return copyreg._reconstructor
    if module.split(".")[0] in _ROOTS:
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise BadInput(f"descriptor pickle names {module}.{name}, not here") from None
        if isinstance(obj, type) or (module, name) in _FUNCTIONS:
            return obj
    raise BadInput(
        f"descriptor pickle refers to {module}.{name}: only numpy arrays and pandas frames "
        "are read (restricted unpickler; see analytics/safe_pickle.py)"
    )


def load_restricted(data: bytes) -> object:
    """Unpickle ``data`` allowing numpy / pandas objects only.

    Raises:
        BadInput: a refused global, or not a pickle at all.
    """
    try:
        return pickles.loads(data, _allowed_global)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any broken pickle is bad input
        raise BadInput(f"not a readable pickle: {type(exc).__name__}: {exc}") from None
