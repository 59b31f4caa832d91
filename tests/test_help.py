"""Every command answers --help (and exits 0) without loading models or touching the network."""

from __future__ import annotations

import importlib

import pytest

COMMANDS = [
    "weights.__main__",  # python -m weights
    "matching.__main__",  # python -m matching
    "matching.explain",  # python -m matching.explain
    "bench.accuracy",
    "bench.calibrate",
    "bench.catalog_calibration",
    "bench.speed",
    "bench.load",
    "api.stream_client",
    "catalog.__main__",  # python -m catalog
]


@pytest.mark.parametrize("module", COMMANDS)
def test_help(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and len(out.splitlines()) > 3
