"""The worker's one state object: built in create_app, lazy parts behind one lock, and the label
model loaded outside the model queue (a detect call without labels never waits for it)."""

from __future__ import annotations

import threading

import labels
from service.state import SightingState


def test_one_state_object_holds_the_worker(client) -> None:
    s = client.application.extensions["sighting"]
    assert isinstance(s, SightingState)
    assert s.streams is not None and s.jobs is s.jobs  # built once
    assert not {"streams", "jobs", "labelers"} & set(client.application.extensions)


def test_label_model_loads_once_outside_the_model_queue(client, monkeypatch) -> None:
    s = client.application.extensions["sighting"]
    real = labels.load_label_embedder
    calls: list[bool] = []

    def spy(settings, *args, **kwargs):
        calls.append(s.model_lock._held)  # is any model call holding the queue meanwhile?
        return real(settings, *args, **kwargs)

    monkeypatch.setattr(labels, "load_label_embedder", spy)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(s.labelers)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert calls == [False]  # loaded once, with the model queue free
    assert len(got) == 4 and all(g is got[0] for g in got)
    with s.model_lock:  # detect calls go on while the labelers exist
        pass
