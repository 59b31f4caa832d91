"""The per-worker model queue: first come, first served, bounded."""

from __future__ import annotations

import threading
import time

import pytest

from api.state import ModelQueue
from core.errors import Busy


def test_waiters_are_served_in_arrival_order() -> None:
    queue, order = ModelQueue(max_waiting=10), []
    queue.__enter__()  # hold the models
    threads = []
    for i in range(6):
        t = threading.Thread(
            target=lambda i=i: (queue.__enter__(), order.append(i), queue.__exit__())
        )
        t.start()
        threads.append(t)
        while queue.waiting < i + 1:  # make arrival order certain
            time.sleep(0.001)
    queue.__exit__()
    for t in threads:
        t.join(5)
    assert order == list(range(6))
    assert queue.waiting == 0


def test_a_full_queue_refuses_at_once() -> None:
    queue = ModelQueue(max_waiting=1)
    queue.__enter__()
    waiter = threading.Thread(target=lambda: (queue.__enter__(), queue.__exit__()))
    waiter.start()
    while queue.waiting < 1:
        time.sleep(0.001)
    with pytest.raises(Busy):
        queue.__enter__()
    queue.__exit__()
    waiter.join(5)
    with queue:  # free again
        pass
