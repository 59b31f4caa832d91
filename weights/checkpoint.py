"""Reading a model file into a module, with the project's error: `ModelUnavailable`.

One way for every torch file of plain data (tensors, numbers, strings: ``weights_only``) that
the embedders, heads and verifiers load::

    state = load_state_dict(path)                      # {"name": tensor}, unwrapped
    fit_state_dict(model, state, path, "mobilenet_v2")  # strict, or tolerating what is derived

A missing, corrupt or foreign file raises `ModelUnavailable` naming the file, never a torch
exception. (The YOLOv5 loader in `detection` keeps its own restricted unpickler: its files hold
pickled classes, not plain data.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from core.errors import ModelUnavailable

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path, what: str = "model file") -> dict:
    """Read a torch file of plain data on the CPU.

    Args:
        path: the file.
        what: how messages name it (``"model file"``, ``"head file"``).

    Returns:
        The file's top-level dict.

    Raises:
        ModelUnavailable: the file is missing, unreadable (corrupt, truncated, pickled
            classes), or holds something other than a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailable(f"{what} {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on corrupt or foreign files
        raise ModelUnavailable(f"{what} {path} cannot be read: {exc}") from None
    if not isinstance(data, Mapping):
        raise ModelUnavailable(
            f"{what} {path} holds {type(data).__name__}, not a state_dict or checkpoint dict"
        )
    return dict(data)


def load_state_dict(
    path: str | Path, what: str = "model file", key: str = "state_dict"
) -> dict[str, torch.Tensor]:
    """Read a state dict of tensors, bare or wrapped as ``{key: state_dict, ...}``.

    Args:
        path: the file.
        what: how messages name it.
        key: the entry a wrapped state dict is kept under (``"state_dict"`` in training
            checkpoints and kornia's LoFTR files, ``"extractor"`` in DISK's).

    Returns:
        ``{parameter name: tensor}``.

    Raises:
        ModelUnavailable: as `load_checkpoint`, or values other than tensors.
    """
    state = load_checkpoint(path, what)
    if isinstance(state.get(key), Mapping):
        state = dict(state[key])
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelUnavailable(f"{what} {path} is not a state_dict of tensors")
    return state


def fit_state_dict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    name: str,
    *,
    derived: tuple[str, ...] = (),
    allow_unexpected: bool = False,
) -> None:
    """Load ``state`` into ``module``; a file that does not fit is `ModelUnavailable`.

    Args:
        module: the built model.
        state: its parameters, as read by `load_state_dict`.
        path: the file they came from (for messages).
        name: the model (for messages).
        derived: suffixes of buffers the module computes itself, which files may lack.
        allow_unexpected: ignore keys the module does not have (releases that carry
            obsolete entries); otherwise they are refused.

    Raises:
        ModelUnavailable: a shape mismatch, a missing tensor (not ``derived``) or, unless
            allowed, an unexpected one; the message names them.
    """
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelUnavailable(f"{path} does not fit {name}: {exc}") from None
    missing = [k for k in result.missing_keys if not k.endswith(derived)]
    unexpected = [] if allow_unexpected else list(result.unexpected_keys)
    if missing or unexpected:
        raise ModelUnavailable(
            f"{path} does not fit {name}: missing keys {missing[:5]} ({len(missing)} in all), "
            f"unexpected keys {unexpected[:5]} ({len(unexpected)} in all)"
        )
    if result.unexpected_keys:
        log.debug("%s: ignored %d unexpected keys", path, len(result.unexpected_keys))
