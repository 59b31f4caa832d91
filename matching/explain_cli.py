"""The command line of `matching.explain`: ``python -m matching.explain`` (the README's).

    python -m matching.explain CATALOG_DIR IMAGE --item ID [--kind animals] [--box x0,y0,x1,y1]
                               [--out explain.png]

Indexes a folder catalog, explains the photo against one item, writes the PNG and prints the
numbers as one JSON line. Exit codes as every command's (`core.cli`): 0 done, 2 bad input (a
missing item, a bad box or image), 1 a failure while running (a model unavailable).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core import cli
from core.errors import NotFound, SightingError
from core.kinds import KINDS
from matching.explain import explain_match, parse_box


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (`core.cli`)."""
    parser = argparse.ArgumentParser(
        prog="python -m matching.explain",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Explain a match: draw the keypoint correspondences between a photo's crop and the\n"
            "item's catalog image, and Grad-CAM heat-maps of where the embedding looks.\n"
            "Prints the numbers as JSON (one line) and writes a PNG."
        ),
        epilog="""\
The crop is the detection whose candidates rank ITEM best (the whole photo when none
does), or --box. Models and weights come from the SIGHTING_* settings (.env.example).

example:
  python -m matching.explain ../shared/data/grocery/catalog \\
      ../shared/data/grocery/queries/Arla-Standard-Milk/train__Arla-Standard-Milk_001.jpg \\
      --item Arla-Standard-Milk --out explain.png

"""
        + cli.EXIT_STATUS,
    )
    parser.add_argument("catalog", type=Path, help="catalog folder: <item_id>/<image> files")
    parser.add_argument("image", type=Path, help="the photo to explain")
    parser.add_argument("--item", required=True, help="the catalog item id (its folder name)")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="products",
        help="catalog kind: picks the embedder and score calibration (default: products)",
    )
    parser.add_argument(
        "--box", metavar="X0,Y0,X1,Y1", help="explain this crop (pixels) instead of a detection"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("explain.png"), help="PNG to write (default: explain.png)"
    )
    parser.add_argument(
        "--height",
        type=int,
        default=320,
        help="height of each picture row in pixels (default: 320)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from core.images import encode_png, read_image
    from core.settings import get_settings
    from matching.engine import load_pipeline
    from matching.folder_catalog import load_folder_catalog

    try:
        box = parse_box(args.box) if args.box else None
        if not (args.catalog / args.item).is_dir():
            raise NotFound(f"no item folder {args.item!r} in {args.catalog}")
        image = read_image(args.image)
        pipeline = load_pipeline(get_settings())
        catalog = load_folder_catalog(pipeline, args.catalog, kind=args.kind)
        explanation = explain_match(
            pipeline,
            catalog,
            image,
            args.item,
            box,
            load_image=lambda image_id: read_image(args.catalog / image_id),
            height=args.height,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(encode_png(explanation.picture))
        print(json.dumps({"image": str(args.image)} | explanation.numbers), flush=True)
        logging.info("wrote %s", args.out)
    except SightingError as exc:
        return cli.report(exc)
    return 0
