"""StreamRegistry: lifecycle, idle timeout, cap, conflicts (no models: a stand-in matcher)."""

from __future__ import annotations

import pytest

from core.errors import BadInput, Conflict, NotFound
from tracking.streams import StreamRegistry, check_stream_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def registry(idle_s: float = 10.0, cap: int = 4) -> tuple[StreamRegistry, FakeClock]:
    clock = FakeClock()
    return StreamRegistry(object, idle_s=idle_s, max_streams=cap, clock=clock), clock


@pytest.mark.parametrize(
    ("stream_id", "ok"),
    [
        ("cam-1", True),
        ("a.b_c-D9", True),
        ("x" * 64, True),
        ("x" * 65, False),  # too long
        ("", False),  # empty
        ("cam/1", False),  # path separator
        ("cam 1", False),  # space
    ],
)
def test_stream_id_validation(stream_id: str, ok: bool) -> None:
    if ok:
        assert check_stream_id(stream_id) == stream_id
    else:
        with pytest.raises(BadInput):
            check_stream_id(stream_id)


def test_open_get_close() -> None:
    reg, _ = registry()
    key = ("t", "c", "s")
    with pytest.raises(NotFound):
        reg.get(key)
    stream = reg.open(key)
    assert reg.get(key) is stream and reg.open(key) is stream  # reopening returns the same
    assert [s.key for s in reg.of_tenant("t")] == [key] and reg.of_tenant("other") == []
    reg.close(key)
    with pytest.raises(NotFound):
        reg.close(key)


def test_idle_timeout_closes() -> None:
    reg, clock = registry(idle_s=10.0)
    reg.open(("t", "c", "old"))
    clock.now = 6.0
    reg.open(("t", "c", "new"))
    clock.now = 12.0  # "old" idle 12 s, "new" idle 6 s
    assert [s.key[2] for s in reg.of_tenant("t")] == ["new"]
    assert reg.expired == 1
    clock.now = 100.0
    assert reg.sweep() == 1 and len(reg) == 0


def test_cap_evicts_least_recently_used() -> None:
    reg, clock = registry(idle_s=1e9, cap=8)
    for i in range(3000):  # thousands of idle streams: memory stays at the cap
        clock.now = float(i)
        reg.open(("t", "c", f"s{i}"))
        assert len(reg) <= 8
    assert reg.evicted == 3000 - 8
    assert sorted(s.key[2] for s in reg.of_tenant("t")) == sorted(
        f"s{i}" for i in range(2992, 3000)
    )


def test_reuse_conflicts() -> None:
    reg, _ = registry()
    stream = reg.open(("t", "c", "s"), client="phone-a")
    assert stream.accept(None, "phone-a") == 0
    stream.last_index = 5
    assert stream.accept(None, None) == 6
    assert stream.accept(9, "phone-a") == 9
    with pytest.raises(Conflict, match="not after"):
        stream.accept(5, "phone-a")  # index going backwards: a second sender
    with pytest.raises(Conflict, match="another client"):
        stream.accept(10, "phone-b")
