"""Operators' command for model files: list, check, fetch.

python -m weights list            # every file, whether it is found, its source
python -m weights fetch NAME      # download a model's files (or one file), sha256-checked
python -m weights verify          # re-hash every file found
"""

from __future__ import annotations

import argparse
import sys

from core import cli
from core.errors import ModelUnavailable
from core.settings import get_settings
from weights.registry import FILES, MODELS, download, resolve, search_dirs, sha256_of


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m weights", description=__doc__.split("\n")[0], epilog=cli.EXIT_STATUS
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every known model and file and where it is found")
    fetch = sub.add_parser("fetch", help="download a model's files into SIGHTING_WEIGHTS_DIR")
    fetch.add_argument("name", help="a model name (e.g. yolov5su) or a file name")
    sub.add_parser("verify", help="re-hash every file found and compare with the registry")
    args = parser.parse_args(argv)
    weights_dir = get_settings().weights_dir

    if args.command == "list":
        print(f"weights folders: {', '.join(str(d) for d in search_dirs(weights_dir))}")
        for spec in MODELS.values():
            print(f"\n{spec.name} ({spec.stage}, {spec.format}) {spec.note}")
            for name in spec.files:
                try:
                    where = str(resolve(name, weights_dir))
                except ModelUnavailable:
                    where = "MISSING"
                print(f"  {name:32s} {FILES[name].license:13s} {where}\n    from {FILES[name].url}")
        return 0
    if args.command == "fetch":
        names = MODELS[args.name].files if args.name in MODELS else (args.name,)
        status = 0
        for name in names:
            if name not in FILES:
                print(f"error: unknown model or file {name!r}", file=sys.stderr)
                return cli.USAGE
            try:
                print(resolve(name, weights_dir))
            except ModelUnavailable:
                try:
                    print(download(FILES[name], weights_dir))
                except ModelUnavailable as exc:
                    status = cli.report(exc)
        return status
    status = 0
    for name, entry in FILES.items():
        for folder in search_dirs(weights_dir):
            path = folder / name
            if path.is_file():
                ok = entry.sha256 is None or sha256_of(path) == entry.sha256
                status |= cli.OK if ok else cli.FAILURE
                print(f"{'ok ' if ok else 'BAD'} {path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
