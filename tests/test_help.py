"""Every command answers --help (and exits 0) without loading models or touching the network;
each server-side command's help ends with the exit-status convention (`core.cli`)."""

from __future__ import annotations

import importlib

import pytest

from core.cli import EXIT_STATUS

COMMANDS = [
    "weights.__main__",  # python -m weights
    "matching.__main__",  # python -m matching
    "matching.explain",  # python -m matching.explain
    "matching.quantize",
    "bench.accuracy",
    "bench.local_rank",
    "bench.calibrate",
    "bench.catalog_calibration",
    "bench.review",
    "bench.speed",
    "bench.load",
    "bench.video",
    "bench.streams",
    "bench.compare_dumps",
    "bench.index",
    "embedding.train",
    "streamclient.cli",  # python -m streamclient
    "catalog.__main__",  # python -m catalog
    "traps.__main__",  # python -m traps
    "analytics.cli",  # python -m analytics
    "jobs.__main__",  # python -m jobs
    "watches.receiver",  # python -m watches.receiver
    "bench.watch",
    "bench.discovery",
    "bench.labels_examples",
    "bench.traps_present",
    "bench.traps_speed",
    "bench.analytics_quality",
    "bench.analytics_scale",
    "bench.analytics_accuracy",
]


@pytest.mark.parametrize("module", COMMANDS)
def test_help(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and len(out.splitlines()) > 3
    if module != "streamclient.cli":  # a client of the service, with its own codes
        assert " ".join(EXIT_STATUS.split()) in " ".join(out.split())
