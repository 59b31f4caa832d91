"""Look inside a torch checkpoint without running it: which globals its pickle references.

Full-model checkpoints (original YOLOv5, ultralytics) are pickles that name Python classes and
functions. `pickle_globals` replays the pickle with every global replaced by an inert stand-in,
so nothing in the file is imported or called; `checkpoint_format` uses the names to pick the
loader and refuses files that reference anything outside the expected packages.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Literal

from core.errors import ModelUnavailable
from core.pickles import restricted_unpickler

CheckpointFormat = Literal["yolov5", "ultralytics"]

#: Plain-data and tensor-rebuilding globals any checkpoint may reference.
SAFE_GLOBALS = frozenset(
    [("collections", "OrderedDict")]
    + [
        (mod, name)
        for mod in ("builtins", "__builtin__")
        for name in ("set", "frozenset", "dict", "list", "tuple", "slice", "range", "complex")
    ]
    + [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.nn.parameter", "Parameter"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch", "Tensor"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("_codecs", "encode"),
    ]
    + [
        (mod, name)
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    ]
)


def _module_class(module: str, name: str, roots: tuple[str, ...]) -> type | None:
    """The ``nn.Module`` subclass ``module.name`` if the module lies under one of ``roots``."""
    if not any(module == root or module.startswith(root + ".") for root in roots):
        return None
    import importlib

    import torch.nn as nn

    try:
        obj = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None


def resolve_safe_global(module: str, name: str, module_roots: tuple[str, ...] = ()) -> object:
    """Resolve a global a checkpoint may reference, or return None if it is not allowed.

    Allowed: `SAFE_GLOBALS`, torch dtypes and storages, numpy dtype classes, and
    ``nn.Module`` subclasses from ``torch.nn.modules`` or one of ``module_roots``.
    Functions (``os.system``, ``builtins.eval``, ``torch.load``...) are never allowed.
    """
    import importlib

    import torch

    if (module, name) in SAFE_GLOBALS:
        mod = "builtins" if module == "__builtin__" else module
        return getattr(importlib.import_module(mod), name)
    if module == "torch":
        obj = getattr(torch, name, None)
        if isinstance(obj, torch.dtype) or (name.endswith("Storage") and isinstance(obj, type)):
            return obj
        return None
    if module == "numpy.dtypes" and name.endswith("DType"):
        return getattr(importlib.import_module(module), name, None)
    return _module_class(module, name, ("torch.nn.modules", *module_roots))


class _Inert:
    """Stand-in for every global: accepts any construction and any state, does nothing."""

    def __new__(cls, *args: object, **kwargs: object) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Inert:
        return _Inert()

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, value: object) -> None:
        pass

    def extend(self, values: object) -> None:
        pass

    def add(self, value: object) -> None:
        pass


def _main_pickle(path: Path) -> bytes:
    """The bytes of ``<archive>/data.pkl`` of a torch zip checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
            if not names:
                raise ModelUnavailable(f"model file {path} is not a torch checkpoint (no data.pkl)")
            return archive.read(names[0])
    except FileNotFoundError:
        raise ModelUnavailable(f"model file {path} does not exist") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelUnavailable(
            f"model file {path} is corrupt or not a torch zip checkpoint: {exc}"
        ) from None


def pickle_globals(path: Path) -> set[tuple[str, str]]:
    """Every ``(module, name)`` global the checkpoint's pickle references; nothing is run.

    Raises:
        ModelUnavailable: missing, not a torch zip checkpoint, or a corrupt pickle.
    """
    found: set[tuple[str, str]] = set()

    def record(module: str, name: str) -> type:  # each global: noted, and an inert stand-in
        found.add((module, name))
        return _Inert

    scanner = restricted_unpickler(record)(io.BytesIO(_main_pickle(Path(path))))
    scanner.persistent_load = lambda pid: None  # storages are not read
    try:
        scanner.load()
    except Exception as exc:  # a broken pickle raises many types
        raise ModelUnavailable(f"model file {path} has a corrupt pickle: {exc}") from None
    return found


def checkpoint_format(path: Path) -> CheckpointFormat:
    """Tell an original ultralytics/yolov5 checkpoint from an ultralytics (v8+) one.

    Original YOLOv5 files reference ``models.yolo``; ultralytics files reference
    ``ultralytics.nn.tasks``. Every global the file names must pass `resolve_safe_global`
    (original files: or be a ``models.*`` class that `yolov5_legacy` re-implements, checked
    when it loads them), because both loaders unpickle with ``weights_only=False``.

    Raises:
        ModelUnavailable: unreadable file, unknown format, or a disallowed global.
    """
    found = pickle_globals(path)
    modules = {module for module, _ in found}
    if "models.yolo" in modules:
        return "yolov5"
    if not any(m.startswith("ultralytics.nn.") for m in modules):
        raise ModelUnavailable(
            f"model file {path} is neither an ultralytics checkpoint (ultralytics.nn.tasks) "
            "nor an original YOLOv5 checkpoint (models.yolo)"
        )
    from core.runtime import prepare_environment

    prepare_environment()  # importing ultralytics.nn.* below must stay offline
    bad = sorted(
        f"{m}.{n}" for m, n in found if resolve_safe_global(m, n, ("ultralytics.nn",)) is None
    )
    if bad:
        raise ModelUnavailable(
            f"model file {path} references code that is not a model class or plain data "
            f"({', '.join(bad[:5])}); refusing to load it"
        )
    return "ultralytics"
