"""The analytics and jobs commands answer --help (exit 0) without loading models."""

from __future__ import annotations

import importlib

import pytest

COMMANDS = [
    "analytics.cli",
    "jobs.__main__",
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
