"""bench.streams: stream shares, the round summary, and a short real run in worker processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.streams import StreamResult, main, ramp, split, summarize

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def test_split_is_even() -> None:
    assert split(5, 2) == [3, 2] and split(1, 3) == [1, 0, 0] and split(6, 3) == [2, 2, 2]
    assert all(sum(split(n, w)) == n for n in range(1, 20) for w in range(1, 5))


def test_summarize_a_round() -> None:
    results = [
        StreamResult(frames=60, verify_calls=6, latencies_ms=[10.0] * 60, seconds=2.0),
        StreamResult(frames=40, verify_calls=4, latencies_ms=[20.0] * 40, seconds=2.0),
    ]
    m = summarize(results)
    assert m["aggregate_fps"] == 50.0 and m["slowest_fps"] == 20.0
    assert m["p50_ms"] == 10.0 and m["p95_ms"] == 20.0 and m["verify_per_frame"] == 0.1


def test_ramp_stops_at_the_first_count_that_falls_behind(capsys) -> None:
    def measure(n: int) -> dict[str, float]:  # a machine of 100 frames/s in all
        return {
            "aggregate_fps": 100.0,
            "slowest_fps": 100.0 / n,
            "p50_ms": 10.0,
            "p95_ms": 20.0,
            "verify_per_frame": 0.1,
        }

    assert ramp([1, 2, 4, 8], measure, target_fps=30.0) == 2
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d", line)]
    assert rows == [
        "| 1 | 100.0 | 100.0 | 10 / 20 | 0.100 | yes |",
        "| 2 | 100.0 | 50.0 | 10 / 20 | 0.100 | yes |",
        "| 4 | 100.0 | 25.0 | 10 / 20 | 0.100 | no |",
    ]
    assert ramp([3], measure, target_fps=1000.0) == 0


def test_short_run_in_two_workers(capsys, offline_env, monkeypatch) -> None:
    """Real worker processes on the real clip; no speed is asserted (1000 frames/s is out of
    reach, so the ramp stops after its first row whatever the machine)."""
    monkeypatch.setenv("SIGHTING_THREADS", "1")
    args = [str(VIDEO / "highway-cars.mp4"), "--catalog", str(VIDEO / "highway-cars-catalog")]
    args += ["--streams", "3,6", "--workers", "2", "--seconds", "1", "--target-fps", "1000"]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "(per worker)" in out[0] and "workers=2" in out[1]
    [row] = [line for line in out if re.match(r"\| \d+ \|", line)]
    assert re.fullmatch(r"\| 3 \| [\d.]+ \| [\d.]+ \| \d+ / \d+ \| [\d.]+ \| no \|", row), row
    assert out[-1] == "streams_sustained=0 target_fps=1000 workers=2"


@pytest.mark.parametrize(
    "bad", [["--streams", "1,x"], ["--streams", "0"], ["--workers", "0"], ["--seconds", "0"]]
)
def test_bad_options_exit_2(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(VIDEO / "highway-cars.mp4"), "--catalog", str(VIDEO), *bad])
    assert info.value.code == 2


def test_a_file_that_is_not_a_video_exits_2(tmp_path, capsys) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"not a video" * 100)
    with pytest.raises(SystemExit) as info:
        main([str(fake), "--catalog", str(VIDEO / "highway-cars-catalog")])
    assert info.value.code == 2 and "cannot be decoded" in capsys.readouterr().err


def test_a_worker_that_cannot_load_its_models_is_an_error(capsys, offline_env, monkeypatch):
    monkeypatch.setenv("SIGHTING_DETECTOR", "no-such-detector")
    args = [str(VIDEO / "highway-cars.mp4"), "--catalog", str(VIDEO / "highway-cars-catalog")]
    assert main([*args, "--streams", "1", "--seconds", "1"]) == 1
    assert "worker died" in capsys.readouterr().err
