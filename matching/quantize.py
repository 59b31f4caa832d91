"""INT8 exports of the configured detector or embedders, calibrated on photos (NNCF).

    python -m matching.quantize detector ../shared/data/grocery/catalog ../shared/data/video
    python -m matching.quantize products ../shared/data/grocery/catalog --limit 300

Writes the OpenVINO int8 model into the export cache (``SIGHTING_EXPORT_DIR``) beside the fp32
one; ``SIGHTING_DETECTOR_PRECISION=int8`` / ``SIGHTING_EMBEDDER_PRECISION=int8`` then run it.
Calibrate on photos like the ones the service will see, and not on the photos you measure
accuracy on (catalog images are a good choice: ``bench.accuracy`` measures queries).
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core import cli
from core.errors import BadInput
from core.images import read_image
from core.settings import get_settings

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def photos_in(folders: list[Path], limit: int, seed: int) -> list[Path]:
    """A seeded sample of ``limit`` image files found under ``folders`` (recursively)."""
    found = sorted(
        p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES
    )
    if not found:
        raise BadInput(f"no photos under {', '.join(map(str, folders))}")
    random.Random(seed).shuffle(found)
    return found[:limit]


def detector_inputs(detector, photos: list[Path]) -> list[np.ndarray]:
    """Each photo letterboxed as the detector sees it: float32 (1, 3, H, W) in [0, 1]."""
    from detection.yolov5_legacy import letterbox_batch

    backend = detector.backend
    imgsz = -(-detector.config.imgsz // backend.stride) * backend.stride
    out = []
    for path in tqdm(photos, desc="calibration photos", unit="photo"):
        batch, _ = letterbox_batch([read_image(path)], imgsz, backend.stride)
        out.append((batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0).copy())
    return out


def embedder_inputs(embedder, photos: list[Path]) -> list[np.ndarray]:
    """Each photo as the embedder sees a crop: float32 (1, 3, S, S) normalised."""
    return [
        embedder.preprocess(read_image(p)).numpy().astype(np.float32)
        for p in tqdm(photos, desc="calibration photos", unit="photo")
    ]


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matching.quantize",
        description="INT8 (NNCF) OpenVINO exports of the detector or an embedder, calibrated "
        "on photos, written to the export cache.",
        epilog=cli.epilog(__doc__.split("\n\n")[1].strip()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "stage", help="detector, or an embedder model name (products, animals, mobilenet_v2)"
    )
    parser.add_argument("folders", type=Path, nargs="+", help="folders of calibration photos")
    parser.add_argument("--limit", type=int, default=300, help="calibration photos (sampled)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from runtimes.quantize import quantize_openvino

    settings = get_settings().model_copy(update={"runtime": "torch"})
    photos = photos_in(args.folders, args.limit, args.seed)
    if args.stage == "detector":
        from detection import load_detector
        from detection.yolov5_legacy import LegacyYoloV5

        detector = load_detector(settings)
        backend = detector.backend
        if not isinstance(backend, LegacyYoloV5):
            raise BadInput("int8 is offered for original YOLOv5 detector files only")
        path = backend.source
        folder = quantize_openvino(
            backend.model,
            stem=path.stem,
            sources=[path],
            sample=torch.zeros(1, 3, backend.stride * 2, backend.stride * 3),
            shape=("b", 3, "h", "w"),
            inputs=detector_inputs(detector, photos),
            cache_dir=settings.export_dir,
            # the box decoding (sigmoid, grid, anchors) stays float: boxes keep their pixels
            ignored_types=("Sigmoid", "Multiply", "Power", "Subtract"),
            # as measured (docs/runtimes.md): the detector's int8 held recall and precision on
            # both dev sets with NNCF's default; the embedders need the fix on every layer
            overflow_fix="first_layer_only",
        )
    else:
        from embedding import load_embedder

        embedder = load_embedder(settings.model_copy(update={"embedder": args.stage}))
        size = embedder.config.input_size
        folder = quantize_openvino(
            embedder.model,
            stem=f"{embedder.name}-{embedder.sources[0].stem}",
            sources=embedder.sources,
            sample=torch.zeros(2, 3, size, size),
            shape=("b", 3, size, size),
            inputs=embedder_inputs(embedder, photos),
            cache_dir=settings.export_dir,
        )
    print(f"int8 export written: {folder}")
    return cli.OK


if __name__ == "__main__":
    raise SystemExit(main())
