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
from pathlib import Path

from tqdm import tqdm

from core import cli
from core.errors import BadInput, SightingError
from core.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m traps",
        description="Camera-trap photos: is there an animal, what is it, which known one.",
        epilog=cli.epilog(
            "Models and weights come from the SIGHTING_* settings (see .env.example)."
        ),
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
    """The detector, labeler and catalog the arguments ask for (a `traps.TrapModels`)."""
    from traps.models import load_trap_models

    prompts = _prompts(args)
    if prompts and args.labels:
        raise BadInput("give either --labels (by example) or --prompts (by text), not both")
    if prompts and not args.clip:
        raise BadInput("--prompts needs --clip: the CLIP files (see docs/traps.md)")
    return load_trap_models(
        settings,
        labels=args.labels,
        prompts=prompts,
        clip=args.clip,
        clip_arch=args.clip_arch,
        label_embedder=args.label_embedder,
        catalog=args.catalog,
        kind=args.kind,
    )


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from traps.batch import TrapConfig, run_batch
    from traps.pictures import write_pictures
    from traps.records import ResultsFile, latest
    from traps.sources import FolderSource, photo_reader

    settings = get_settings()
    try:
        source = FolderSource(args.folder)
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
        bar = tqdm(desc="photos", unit="photo")

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        summary = run_batch(source, models, out, config, progress=progress)
        bar.close()
        records = list(latest(ResultsFile(summary.results).read()))
        write_pictures(
            records, photo_reader(source, config.max_pixels), out, photos=not args.no_draw
        )
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
        return cli.report(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
