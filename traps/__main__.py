"""Process a camera trap's card: animal present, labels, known individuals; CSV and pictures.

    python -m traps FOLDER [--labels LABELSET] [--catalog CATALOG] [--out DIR]

FOLDER is searched recursively (an SD card's DCIM/...). Writes into DIR:
``results.jsonl`` (one JSON object per photo; a re-run skips the photos it holds),
``results.csv`` (one row per detection, one for a photo without any), ``animals.jpg`` and
``empties.jpg`` (contact sheets) and, unless --no-draw, ``photos/<name>.jpg`` (each photo with
an animal, its boxes and its label bar chart).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from core.errors import BadInput, SightingError
from core.images import decode_image
from core.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m traps",
        description="Camera-trap photos: is there an animal, what is it, which known one.",
        epilog="Models and weights come from the SIGHTING_* settings (see .env.example).",
    )
    parser.add_argument("folder", type=Path, help="the photos (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("out/traps"), help="results folder")
    parser.add_argument(
        "--labels",
        help="label set for labels by example: a folder <label>/<image> or a store catalog id",
    )
    parser.add_argument(
        "--prompts", nargs="+", help="labels by text (CLIP zero-shot): one prompt per label"
    )
    parser.add_argument("--prompts-file", type=Path, help="labels by text: one prompt a line")
    parser.add_argument(
        "--clip",
        help="the CLIP files for --prompts: a transformers folder (config.json ...), an "
        "open_clip checkpoint file, or a registry name (python -m weights list)",
    )
    parser.add_argument(
        "--clip-arch", default="ViT-B-32", help="open_clip architecture of a --clip file"
    )
    parser.add_argument(
        "--label-embedder",
        default=None,
        help="embedder of labels by example (registry name or .head file; default mobilenet_v2)",
    )
    parser.add_argument(
        "--catalog", help="known individuals: a folder <item>/<image> or a store catalog id"
    )
    parser.add_argument("--kind", choices=["animals", "products"], default="animals")
    parser.add_argument("--threshold", type=float, default=None, help="animal score threshold")
    parser.add_argument("--classes", nargs="+", help="detector classes that count as animals")
    parser.add_argument("--top-k", type=int, default=3, help="known individuals per animal")
    parser.add_argument("--no-verify", action="store_true", help="skip keypoint verification")
    parser.add_argument("--no-draw", action="store_true", help="no per-photo pictures")
    return parser


def _prompts(args: argparse.Namespace) -> list[str] | None:
    prompts = list(args.prompts or [])
    if args.prompts_file is not None:
        if not args.prompts_file.is_file():
            raise BadInput(f"prompts file {args.prompts_file} does not exist")
        lines = args.prompts_file.read_text(encoding="utf-8").splitlines()
        prompts += [line.strip() for line in lines if line.strip()]
    return prompts or None


def load_models(args: argparse.Namespace, settings) -> object:
    """The detector, labeler and catalog the arguments ask for (a `TrapModels`)."""
    from core.runtime import configure_torch, prepare_environment
    from traps.batch import TrapModels, native_size

    prepare_environment()
    prompts = _prompts(args)
    if prompts and args.labels:
        raise BadInput("give either --labels (by example) or --prompts (by text), not both")
    if prompts and not args.clip:
        raise BadInput("--prompts needs --clip: the CLIP files (see README, Camera traps)")
    if prompts:
        from labels.text import check_prompts

        check_prompts(prompts)  # before any model loads
    pipeline = catalog = None
    if args.catalog:
        from matching.engine import load_pipeline

        pipeline = load_pipeline(settings)
        detector = pipeline.detector
        catalog = _load_catalog(pipeline, args.catalog, args.kind, settings)
    else:
        from detection import load_detector

        detector = load_detector(settings)
    labeler = None
    if args.labels:
        from labels import DEFAULT_LABEL_EMBEDDER, load_example_labeler, load_label_embedder

        embedder = load_label_embedder(settings, args.label_embedder or DEFAULT_LABEL_EMBEDDER)
        labeler = load_example_labeler(args.labels, settings, embedder)
    elif prompts:
        from labels.text import load_text_labeler

        labeler = load_text_labeler(args.clip, prompts, settings, arch=args.clip_arch)
    configure_torch(settings.threads)
    return TrapModels(native_size(detector), labeler, pipeline, catalog)


def _load_catalog(pipeline, source: str, kind: str, settings):
    """A known-individual catalog: a folder in the data layout, or a store catalog id."""
    if Path(source).is_dir():
        from matching.folder_catalog import load_folder_catalog

        return load_folder_catalog(pipeline, source, kind=kind)
    from catalog.cache import CatalogCache
    from catalog.repository import CatalogRepository
    from catalog.stores import open_store

    repository = CatalogRepository(open_store(settings))
    cache = CatalogCache(repository, lambda k: pipeline.embedder_for(k).dim)
    manifest, view = cache.get(source)
    want = pipeline.embedder_for(manifest.kind).fingerprint
    if manifest.embedder_fingerprint not in (None, want):
        raise BadInput(
            f"catalog {source} was indexed with {manifest.embedder_fingerprint}, this process "
            f"embeds {manifest.kind} with {want}: re-index it or choose the same models"
        )
    return view


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from traps.batch import TrapConfig, list_photos, run_batch
    from traps.pictures import contact_sheet, photo_card

    settings = get_settings()
    try:
        photos = list_photos(args.folder)
        models = load_models(args, settings)
        config = TrapConfig(
            threshold=settings.det_conf if args.threshold is None else args.threshold,
            floor=min(0.05, settings.det_conf if args.threshold is None else args.threshold),
            classes=tuple(args.classes) if args.classes else None,
            top_k=args.top_k,
            verify=not args.no_verify,
            max_pixels=settings.max_image_pixels,
        )
        if config.classes:
            models.detector.class_ids(config.classes)  # unknown class names: a clear error
        out = args.out
        (out / "photos").mkdir(parents=True, exist_ok=True)

        def draw(record: dict, image) -> None:
            if args.no_draw or image is None or not record["animal_present"]:
                return
            name = record["file"].replace("/", "__")
            card = photo_card(image, record)
            cv2.imwrite(str(out / "photos" / f"{Path(name).stem}.jpg"), card[..., ::-1])

        bar = tqdm(total=len(photos), desc="photos", unit="photo")

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        summary = run_batch(
            photos, models, out, config, root=args.folder, progress=progress, on_record=draw
        )
        bar.close()
        records = [json.loads(line) for line in summary.results.read_text().splitlines()]

        def read(name: str):
            try:
                return decode_image((args.folder / name).read_bytes(), max_pixels=config.max_pixels)
            except (OSError, SightingError):
                return None

        for empties, file in ((False, "animals.jpg"), (True, "empties.jpg")):
            sheet = contact_sheet(records, read, empties=empties)
            if sheet is not None:
                cv2.imwrite(str(out / file), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(
            json.dumps(
                {
                    "photos": summary.total,
                    "done_before": summary.done_before,
                    "processed": summary.processed,
                    "with_animal": summary.with_animal,
                    "errors": summary.errors,
                    "seconds": round(summary.seconds, 1),
                    "csv": str(summary.csv),
                    "jsonl": str(summary.results),
                }
            )
        )
    except SightingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
