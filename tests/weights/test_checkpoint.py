"""`weights.checkpoint`: every unusable file is `ModelUnavailable` naming it; good ones load."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from torch import nn

from core.errors import ModelUnavailable
from weights.checkpoint import fit_state_dict, load_checkpoint, load_state_dict


def _linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def _saved(path: Path, data: object) -> Path:
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "absent.pt", "does not exist"),
        (lambda d: (d / "text.pt").write_bytes(b"not a checkpoint") and d / "text.pt", "read"),
        (lambda d: _saved(d / "list.pt", [1, 2]), "holds list"),
        (lambda d: _saved(d / "module.pt", _linear()), "cannot be read"),  # pickled classes
    ],
)
def test_unreadable_files_are_model_unavailable(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ModelUnavailable, match=message) as err:
        load_checkpoint(path, "head file")
    assert str(path) in str(err.value) and str(err.value).startswith("head file")


def test_checkpoint_and_state_dict_layouts(tmp_path: Path) -> None:
    state = _linear().state_dict()
    meta = _saved(tmp_path / "meta.pt", {"format": "x/1", "weights": state, "n": 3})
    assert load_checkpoint(meta)["n"] == 3
    for data, key in [
        (state, "state_dict"),  # bare
        ({"state_dict": state, "epoch": 4}, "state_dict"),  # a training checkpoint
        ({"extractor": collections.OrderedDict(state)}, "extractor"),  # DISK's layout
    ]:
        loaded = load_state_dict(_saved(tmp_path / "sd.pt", data), key=key)
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], state[k]) for k in state)
    with pytest.raises(ModelUnavailable, match="not a state_dict of tensors"):
        load_state_dict(meta)


def test_fit_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    good = _linear().state_dict()
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    fit_state_dict(model, good, path, "tiny")
    assert torch.equal(model[0].weight, good["0.weight"])
    without_count = {k: v for k, v in good.items() if k != "1.running_mean"}
    extra = {**good, "old.r": torch.zeros(1)}
    cases = [
        (without_count, {}, "1.running_mean"),  # missing
        (extra, {}, "old.r"),  # unexpected
        ({**good, "0.weight": torch.zeros(5, 5)}, {}, "size mismatch"),
    ]
    for state, options, message in cases:
        with pytest.raises(ModelUnavailable, match=message) as err:
            fit_state_dict(model, state, path, "tiny", **options)
        assert f"{path} does not fit tiny" in str(err.value)
    # what a module derives itself may be absent; obsolete entries may be allowed
    fit_state_dict(model, without_count, path, "tiny", derived=("running_mean",))
    fit_state_dict(model, extra, path, "tiny", allow_unexpected=True)
