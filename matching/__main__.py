"""Match photos against a folder catalog and draw what was found.

    python -m matching CATALOG_DIR IMAGE_OR_FOLDER [--out out/] [--top-k 5] [--no-verify]

CATALOG_DIR is in the data layout (``<item_id>/<image>``). Prints one JSON object per image
(detections, their ranked matches, timings) and writes ``<out>/<image stem>.jpg`` with boxes,
labels and a gallery of the best-matching catalog images.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2

from core import cli
from core.errors import SightingError
from core.images import list_images, read_image
from core.kinds import KINDS
from core.settings import get_settings
from matching.engine import load_pipeline
from matching.folder_catalog import load_folder_catalog, scan_catalog
from matching.pipeline import PipelineConfig
from matching.report import draw_frame, frame_to_dict


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m matching",
        description="Match photos against a folder catalog; print JSON and draw the matches.",
        epilog=cli.epilog("Models and weights come from the SIGHTING_* settings (.env.example)."),
    )
    parser.add_argument("catalog", type=Path, help="catalog folder: <item_id>/<image> files")
    parser.add_argument("images", type=Path, help="an image file or a folder of images")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for drawn images")
    parser.add_argument(
        "--top-k", type=int, default=None, help="matches per detection (default SIGHTING_TOP_K)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip keypoint verification")
    parser.add_argument("--kind", choices=KINDS, default="products")
    parser.add_argument("--no-draw", action="store_true", help="do not write drawn images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        paths = list_images(args.images) if args.images.is_dir() else [args.images]
        settings = get_settings()
        scan_catalog(args.catalog)  # a missing catalog fails before models load
        pipeline = load_pipeline(settings)
        catalog = load_folder_catalog(pipeline, args.catalog, kind=args.kind)
        config = PipelineConfig.from_settings(
            settings, top_k=args.top_k or settings.top_k, verify=not args.no_verify
        )
        if not args.no_draw:
            args.out.mkdir(parents=True, exist_ok=True)
        for path in paths:
            image = read_image(path)
            result = pipeline.match_frames([image], catalog, config)[0]
            print(json.dumps({"image": str(path)} | frame_to_dict(result)), flush=True)
            if not args.no_draw:
                drawn = draw_frame(
                    image, result, lambda image_id: read_image(args.catalog / image_id)
                )
                out = args.out / f"{path.stem}.jpg"
                cv2.imwrite(str(out), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                logging.info("wrote %s", out)
    except SightingError as exc:
        return cli.report(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
