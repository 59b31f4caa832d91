"""`core.retry.compare_and_swap`: retries lost races, stops on a decline, gives up bounded."""

from __future__ import annotations

import pytest

from core.errors import Conflict
from core.retry import compare_and_swap


class Box:
    """An object with an etag; ``lose`` writes of others land between a read and a write."""

    def __init__(self, lose: int = 0) -> None:
        self.value, self.etag, self.lose, self.writes = 0, "e0", lose, 0

    def read(self) -> tuple[int, str]:
        return self.value, self.etag

    def write(self, data: bytes, etag: str) -> None:
        if self.lose:  # someone else wrote first
            self.lose -= 1
            self.value, self.etag = self.value + 100, self.etag + "'"
        if etag != self.etag:
            raise Conflict("etag moved")
        self.value, self.etag, self.writes = int(data), self.etag + "+", self.writes + 1


def add_one(value: int) -> tuple[bytes, int]:
    return str(value + 1).encode(), value + 1


@pytest.mark.parametrize("lose", [0, 1, 2])
def test_a_lost_race_is_retried_on_the_fresh_value(lose: int) -> None:
    box, pauses = Box(lose), []
    got = compare_and_swap(
        box.read, add_one, box.write, tries=3, pause=lambda a: pauses.append(a) or 0.0,
        gave_up=lambda: Conflict("gave up"),
    )  # fmt: skip
    assert got == box.value == 100 * lose + 1 and box.writes == 1
    assert pauses == list(range(lose))


def test_a_declined_change_writes_nothing() -> None:
    box = Box()
    got = compare_and_swap(
        box.read, lambda v: None, box.write, tries=3, pause=lambda a: 0.0,
        gave_up=lambda: Conflict("gave up"),
    )  # fmt: skip
    assert got is None and box.writes == 0


def test_gives_up_after_tries_lost_races() -> None:
    box = Box(lose=5)
    with pytest.raises(Conflict, match="kept changing"):
        compare_and_swap(
            box.read, add_one, box.write, tries=3, pause=lambda a: 0.0,
            gave_up=lambda: Conflict("kept changing"),
        )  # fmt: skip
    assert box.writes == 0 and box.lose == 2
