"""One exit-code convention for every command: 2 usage or bad input, 1 a failure while running.

Each row runs a command's ``main`` in this process on input that fails before any model
loads (a missing model is the failure while running: the detector or the weights folder
named by the settings is not there), so the table stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import cli
from core.errors import (
    BadInput,
    Busy,
    Conflict,
    Forbidden,
    ModelUnavailable,
    NotFound,
    SightingError,
    StoreUnavailable,
    TooLarge,
    Unauthorized,
    UnsupportedMedia,
)
from core.settings import get_settings


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadInput, 2),  # an input the command cannot use
        (UnsupportedMedia, 2),
        (TooLarge, 2),
        (NotFound, 2),  # an unknown catalog, item or file
        (Conflict, 2),  # the catalog's state refuses it (e.g. an export over an earlier one)
        (Unauthorized, 2),
        (Forbidden, 2),
        (ModelUnavailable, 1),  # a model missing or unable to run
        (StoreUnavailable, 1),  # the store failed
        (Busy, 1),
        (SightingError, 1),  # any other error of ours
    ],
)
def test_exit_code_of_each_error(error: type[SightingError], code: int, capsys) -> None:
    assert cli.exit_code(error("x")) == code
    assert cli.command(lambda: (_ for _ in ()).throw(error("boom")))() == code
    assert capsys.readouterr().err == "error: boom\n"


def test_a_bad_setting_is_bad_input(monkeypatch, capsys) -> None:
    monkeypatch.setenv("SIGHTING_DEVICE", "tpu")
    get_settings.cache_clear()
    try:
        assert cli.command(get_settings)() == 2
    finally:
        get_settings.cache_clear()
    assert "bad setting" in capsys.readouterr().err


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    cv2.imwrite(str(path), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    return path


def _data_set(root: Path) -> Path:
    """A set in the data layout: two items, two photos each, one stranger."""
    for item in ("alpha", "beta"):
        for n in (1, 2):
            _photo(root / "catalog" / item / f"{n}.jpg")
            _photo(root / "queries" / item / f"{n}.jpg")
    _photo(root / "queries" / "_none" / "1.jpg")
    return root


USAGE, BAD_INPUT, FAILURE = "usage", "bad input", "failure"

# (command module, what the row shows, argv given the temp folder, expected exit code);
# FAILURE rows run with SIGHTING_DETECTOR naming no model (or an empty weights folder)
ROWS: list[tuple[str, str, Callable[[Path], list[str]], int]] = [
    ("catalog.__main__", USAGE, lambda t: ["reindex"], 2),  # ids or --all needed
    ("catalog.__main__", BAD_INPUT, lambda t: ["export", "no-such-catalog", str(t / "x")], 2),
    ("catalog.__main__", BAD_INPUT, lambda t: ["put-video", str(t / "none.mp4"), "videos/a"], 2),
    ("catalog.__main__", FAILURE, lambda t: ["reindex", "--all"], 1),  # no detector to load
    ("matching.__main__", USAGE, lambda t: [], 2),
    ("matching.__main__", BAD_INPUT, lambda t: [str(t / "nope"), str(t)], 2),
    ("matching.__main__", FAILURE, lambda t: [str(t / "set/catalog"), str(t / "set/queries")], 1),
    ("matching.explain", USAGE, lambda t: [str(t)], 2),
    (
        "matching.explain",
        BAD_INPUT,
        lambda t: [str(t / "set/catalog"), str(t / "set/queries/alpha/1.jpg"), "--item", "nope"],
        2,
    ),
    (
        "matching.explain",
        FAILURE,
        lambda t: [str(t / "set/catalog"), str(t / "set/queries/alpha/1.jpg"), "--item", "alpha"],
        1,
    ),
    ("bench.accuracy", USAGE, lambda t: [str(t / "set"), "--kind", "plants"], 2),
    ("bench.accuracy", BAD_INPUT, lambda t: [str(t / "set/catalog")], 2),  # no queries/
    ("bench.accuracy", BAD_INPUT, lambda t: [str(t / "set"), "--rescore", str(t / "no.json")], 2),
    ("bench.accuracy", FAILURE, lambda t: [str(t / "set"), "--plot", str(t / "r.png")], 1),
    ("bench.calibrate", USAGE, lambda t: [], 2),
    ("bench.calibrate", BAD_INPUT, lambda t: [f"products={t / 'no.json'}"], 2),
    ("bench.speed", USAGE, lambda t: ["--frames", "many"], 2),
    ("bench.speed", BAD_INPUT, lambda t: ["--catalog", str(t / "nope")], 2),
    ("bench.speed", FAILURE, lambda t: ["--catalog", str(t / "set/catalog")], 1),
    ("bench.load", USAGE, lambda t: ["--clients", "some"], 2),
    ("bench.video", USAGE, lambda t: [], 2),
    ("bench.streams", USAGE, lambda t: [str(t / "clip.mp4")], 2),  # --catalog needed
    ("embedding.train", USAGE, lambda t: [str(t / "set")], 2),  # --out needed
    ("embedding.train", BAD_INPUT, lambda t: [str(t / "nope"), "--out", str(t / "h.head")], 2),
    (
        "embedding.train",
        FAILURE,
        lambda t: [str(t / "set"), "--out", str(t / "h.head"), "--weights-dir", str(t / "w")],
        1,
    ),
    ("weights.__main__", USAGE, lambda t: [], 2),
    ("weights.__main__", BAD_INPUT, lambda t: ["fetch", "no-such-model"], 2),
    ("weights.__main__", FAILURE, lambda t: ["verify"], 1),  # a corrupt file in the folder
]


def _status(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # argparse's usage errors
        return done.code if isinstance(done.code, int) else 1


@pytest.mark.parametrize(
    ("module", "what", "argv", "code"),
    ROWS,
    ids=[f"{m.removesuffix('.__main__')}-{w}-{i}" for i, (m, w, _, _) in enumerate(ROWS)],
)
def test_exit_codes(module, what, argv, code, tmp_path: Path, monkeypatch, capsys) -> None:
    _data_set(tmp_path / "set")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "yolov5n.pt").write_bytes(b"not the real file")  # `weights verify`: BAD
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGHTING_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("SIGHTING_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("SIGHTING_DEVICE", "cpu")
    if what == FAILURE:
        monkeypatch.setenv("SIGHTING_DETECTOR", "no-such-detector")
    if module == "catalog.__main__" and what == FAILURE:  # one catalog to re-index
        from catalog.repository import CatalogRepository
        from catalog.stores import open_store
        from core.settings import Settings

        store = open_store(Settings(_env_file=None, data_dir=tmp_path / "store"))
        CatalogRepository(store).create_catalog("shop", "products", "owner")
    get_settings.cache_clear()
    try:
        main = importlib.import_module(module).main
        assert _status(main, argv(tmp_path)) == code
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    said = out.err + out.out
    expected = {USAGE: "usage:", BAD_INPUT: "error: ", FAILURE: "error: "}[what]
    if module == "weights.__main__" and what == FAILURE:
        expected = "BAD "
    assert expected in said, said
    if what == FAILURE:  # failed for the reason the row names: the model, not something else
        assert any(name in said for name in ("no-such-detector", "yolov5n.pt", "mobilenet")), said
