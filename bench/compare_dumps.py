"""Two `bench.accuracy --json` dumps compared photo by photo (a refactor must not move them).

    python -m bench.compare_dumps out/before.json out/after.json

Prints how many photos have identical records (their timing, ``seconds``, left out), then,
for each photo that differs, its first differing candidate in both dumps. The last line is
``photos=N identical=I differ=D``; the exit status is 0 when every photo is identical, 1 when
some differ, 2 when the dumps are not of the same photos.

Another runtime or precision (`runtimes`) moves scores by float rounding, so its photos are
rarely identical; what must hold is the accuracy. ``--within POINTS`` prints recall@1,
recall@5 and confirm precision (and confirm recall, open-set false confirms) of both dumps,
their difference in points, and how many photos' top item changed; the exit status then says
whether recall@1, recall@5 and confirm precision each moved by at most POINTS (0) or not (1),
and the last line adds ``top1_changed=K r1_delta=.. r5_delta=.. precision_delta=.. holds=B``.
``--common`` compares the photos both dumps ran when one is a time-boxed run
(``bench.accuracy --first``) of the other's sample: the first N photos of both.

    python -m bench.compare_dumps out/grocery-torch.json out/grocery-openvino.json --within 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.metrics import ranked_items, summarize
from core import cli
from core.errors import BadInput

#: Per-photo fields that measure the run, not its answer (`bench.accuracy`'s ``seconds``: a
#: photo's wall time): left out of the comparison.
TIMING = ("seconds",)

#: The metrics ``--within`` holds to its tolerance (the issue's rule for a runtime), then the
#: ones it only prints.
HELD = ("recall@1", "recall@5", "confirm_precision")
SHOWN = ("confirm_recall", "open_set_false_confirm")


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


def accuracy_moves(before: list[dict], after: list[dict], within: float) -> tuple[dict, bool]:
    """Each metric of `HELD` and `SHOWN` in both dumps and its move in points, the photos
    whose top item changed, and whether every `HELD` metric moved by at most ``within``."""
    a, b = summarize(before), summarize(after)
    moves = {m: (a[m], b[m], 100 * (b[m] - a[m])) for m in (*HELD, *SHOWN)}
    changed = sum(
        ranked_items(x)[:1] != ranked_items(y)[:1] for x, y in zip(before, after, strict=True)
    )
    # nan (no confirmation in either dump) compares False: a metric that vanished fails
    holds = all(abs(moves[m][2]) <= within or (a[m] != a[m] and b[m] != b[m]) for m in HELD)
    return {"moves": moves, "top1_changed": changed}, holds


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
        epilog=cli.epilog(
            "1 here also means: some photos differ (with --within: the accuracy moved more)."
        ),
    )
    parser.add_argument("before", type=Path, help="a bench.accuracy --json dump")
    parser.add_argument("after", type=Path, help="another dump of the same photos")
    parser.add_argument(
        "--within",
        type=float,
        default=None,
        metavar="POINTS",
        help="judge the accuracy instead of identity: recall@1, recall@5 and confirm "
        "precision each within POINTS percentage points of BEFORE (exit 0) or not (1)",
    )
    parser.add_argument(
        "--common",
        action="store_true",
        help="compare the first photos both dumps ran (one a time-boxed run of the other)",
    )
    args = parser.parse_args(argv)
    if args.within is not None and args.within < 0:
        parser.error("--within must be >= 0")
    before, after = _records(args.before), _records(args.after)
    if args.common:
        n = min(len(before), len(after))
        before, after = before[:n], after[:n]
    if [r["path"] for r in before] != [r["path"] for r in after]:
        raise BadInput("the dumps are not of the same photos in the same order")
    differ = [(a, b) for a, b in zip(before, after, strict=True) if answer(a) != answer(b)]
    for a, b in differ:
        crop, rank, ma, mb = first_difference(a, b)
        print(f"{a['path']}: crop {crop} rank {rank}\n  before {ma}\n  after  {mb}")
    last = f"photos={len(before)} identical={len(before) - len(differ)} differ={len(differ)}"
    if args.within is None:
        print(last)
        return cli.OK if not differ else cli.FAILURE
    found, holds = accuracy_moves(before, after, args.within)
    print(f"{'metric':<24}{'before':>10}{'after':>10}{'points':>10}")
    for metric, (a, b, points) in found["moves"].items():
        print(f"{metric:<24}{a:>10.3f}{b:>10.3f}{points:>+10.1f}")
    moves = found["moves"]
    print(
        f"{last} top1_changed={found['top1_changed']} "
        f"r1_delta={moves['recall@1'][2]:+.1f} r5_delta={moves['recall@5'][2]:+.1f} "
        f"precision_delta={moves['confirm_precision'][2]:+.1f} within={args.within:g} "
        f"holds={str(holds).lower()}"
    )
    return cli.OK if holds else cli.FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
