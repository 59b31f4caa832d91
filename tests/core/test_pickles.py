"""`core.pickles`: the one restricted unpickler resolves every global through its allow rule."""

from __future__ import annotations

import collections
import io
import os
import pickle

import pytest
import torch
import torch._utils

from core import pickles


class Refused(Exception):
    pass


def only_ordered_dict(module: str, name: str) -> object:
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    raise Refused(f"{module}.{name}")


class RunsCode:
    def __reduce__(self):
        return (os.getpid, ())  # a pickle may call any global while loading


def test_allowed_globals_load_and_others_are_refused_without_being_called() -> None:
    data = pickle.dumps(collections.OrderedDict(a=[1, 2]))
    assert pickles.loads(data, only_ordered_dict) == {"a": [1, 2]}
    with pytest.raises(Refused, match="posix.getpid|os.getpid"):
        pickles.loads(pickle.dumps(RunsCode()), only_ordered_dict)


def test_the_rule_may_return_a_stand_in() -> None:
    seen: set[tuple[str, str]] = set()

    def record(module: str, name: str) -> object:
        seen.add((module, name))
        return lambda *args: ("stand-in", args)

    assert pickles.loads(pickle.dumps(RunsCode()), record) == ("stand-in", ())
    assert seen in ({("posix", "getpid")}, {("os", "getpid")})


def test_pickle_module_restricts_torch_load() -> None:
    def tensors(module: str, name: str) -> object:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        return only_ordered_dict(module, name)

    module = pickles.pickle_module(tensors, "test_restricted")
    for value, refused in (({"w": torch.arange(3)}, None), ({"x": RunsCode()}, "getpid")):
        buf = io.BytesIO()
        torch.save(value, buf)
        buf.seek(0)
        if refused is None:
            loaded = torch.load(buf, weights_only=False, pickle_module=module)
            assert loaded["w"].tolist() == [0, 1, 2]
        else:
            with pytest.raises(Refused, match=refused):
                torch.load(buf, weights_only=False, pickle_module=module)
