"""Two `bench.accuracy --json` dumps compared photo by photo (a refactor must not move them).

    python -m bench.compare_dumps out/before.json out/after.json

Prints how many photos have identical records (their timing, ``seconds``, left out), then,
for each photo that differs, its first differing candidate in both dumps. The last line is
``photos=N identical=I differ=D``; the exit status is 0 when every photo is identical, 1 when
some differ, 2 when the dumps are not of the same photos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core import cli
from core.errors import BadInput

#: Per-photo fields that measure the run, not its answer (`bench.accuracy`'s ``seconds``: a
#: photo's wall time): left out of the comparison.
TIMING = ("seconds",)


def answer(record: dict) -> dict:
    """A dump record without its `TIMING` fields."""
    return {k: v for k, v in record.items() if k not in TIMING}


def first_difference(a: dict, b: dict) -> tuple[int, int, dict | None, dict | None]:
    """(crop, rank, candidate in a, candidate in b) of the first candidate that differs."""
    for c, (ca, cb) in enumerate(zip(a["crops"], b["crops"], strict=False)):
        for r, (ma, mb) in enumerate(zip(ca, cb, strict=False)):
            if ma != mb:
                return c, r, ma, mb
        if len(ca) != len(cb):
            return c, min(len(ca), len(cb)), None, None
    return len(a["crops"]), 0, None, None


def _records(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["records"]
    except (OSError, ValueError, KeyError) as exc:
        raise BadInput(f"{path} is not a bench.accuracy --json dump: {exc}") from None


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare_dumps",
        description=__doc__.split("\n")[0],
        epilog=cli.epilog("1 here also means: some photos differ."),
    )
    parser.add_argument("before", type=Path, help="a bench.accuracy --json dump")
    parser.add_argument("after", type=Path, help="another dump of the same photos")
    args = parser.parse_args(argv)
    before, after = _records(args.before), _records(args.after)
    if [r["path"] for r in before] != [r["path"] for r in after]:
        raise BadInput("the dumps are not of the same photos in the same order")
    differ = [(a, b) for a, b in zip(before, after, strict=True) if answer(a) != answer(b)]
    for a, b in differ:
        crop, rank, ma, mb = first_difference(a, b)
        print(f"{a['path']}: crop {crop} rank {rank}\n  before {ma}\n  after  {mb}")
    print(f"photos={len(before)} identical={len(before) - len(differ)} differ={len(differ)}")
    return cli.OK if not differ else cli.FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
