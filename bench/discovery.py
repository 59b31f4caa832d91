"""Discovery of new individuals on a dev set whose catalog is removed: are the groups right?

    python -m bench.discovery ../shared/data/dogs --kind animals --limit 40

Every query photo of ``--limit`` seeded individuals (dogs) is a sighting of an unknown
individual (the set's catalog is not used), plus up to ``--limit`` photos of ``_none`` (each
counted as an individual of its own). The photos go through what the discovery job runs on
its crops (`discovery.photos.discover_photos`: the kind's embedder, neighbours, loose
clusters, keypoint verification inside each, scored with the kind's calibration).

Figures (as clustering benchmarks report them): ``pair_precision`` = share of the photo pairs
put in one group that show one individual; ``pair_recall`` = share of the pairs of photos of
one individual that are put in one group; ``one_group`` = share of the individuals with two
or more photos proposed as exactly one group holding all their photos and no other.
The last line is ``key=value``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import time
from pathlib import Path

from core import cli
from core.dataset import NONE
from core.kinds import KINDS


def plan(dataset: Path, limit: int, seed: int) -> list[tuple[Path, str]]:
    """(photo, individual) of ``limit`` seeded individuals and up to ``limit`` ``_none``
    photos (each its own individual), sorted by path."""
    from core.images import list_images

    rng = random.Random(seed)
    root = dataset / "queries"
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != NONE)
    chosen = sorted(rng.sample(folders, min(limit, len(folders))), key=lambda p: p.name)
    photos = [(p, f.name) for f in chosen for p in list_images(f)]
    if (root / NONE).is_dir():
        strangers = list_images(root / NONE)
        picked = rng.sample(strangers, min(limit, len(strangers)))
        photos += [(p, f"{NONE}:{p.name}") for p in picked]
    return sorted(photos)


def pair_scores(truth: list[str], groups: list[tuple[int, ...]]) -> dict[str, float]:
    """Pairwise precision and recall, and the share of individuals found as one group."""
    true_pairs = {
        (a, b) for a, b in itertools.combinations(range(len(truth)), 2) if truth[a] == truth[b]
    }
    found = {pair for g in groups for pair in itertools.combinations(sorted(g), 2)}
    hit = len(true_pairs & found)
    photos_of: dict[str, set[int]] = {}
    for i, t in enumerate(truth):
        photos_of.setdefault(t, set()).add(i)
    several = [t for t, p in photos_of.items() if len(p) >= 2]
    exact = {frozenset(g) for g in groups}
    one = sum(1 for t in several if frozenset(photos_of[t]) in exact)
    return {
        "pair_precision": hit / len(found) if found else 1.0,
        "pair_recall": hit / len(true_pairs) if true_pairs else 1.0,
        "one_group": one / len(several) if several else 1.0,
        "individuals": len(several),
        "true_pairs": len(true_pairs),
        "proposed_pairs": len(found),
    }


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.discovery",
        description=__doc__.split("\n\n")[0],
        epilog=cli.EXIT_STATUS,
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (../shared/data/dogs)")
    parser.add_argument("--kind", default="animals", choices=KINDS, help="catalog kind")
    parser.add_argument("--limit", type=int, default=40, help="individuals (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--both-sides",
        action="store_true",
        help="confirm a pair only when its score holds from both photos' sides",
    )
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from bench.machine import describe
    from core.images import read_image
    from core.settings import get_settings
    from discovery.group import GroupConfig
    from discovery.photos import discover_photos
    from matching.engine import load_pipeline

    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    photos = plan(args.dataset, args.limit, args.seed)
    truth = [t for _, t in photos]
    pipeline = load_pipeline(settings)
    print(describe(settings))
    print(f"load average before: {os.getloadavg()}")
    crops = [read_image(p) for p, _ in tqdm(photos, desc="reading", unit="photo")]
    config = GroupConfig(
        neighbours=settings.discovery_neighbours,
        link_similarity=settings.discovery_link_similarity,
        max_group=settings.discovery_max_group,
        both_sides=args.both_sides,
    )
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="photo")
        bar.n = done
        bar.refresh()

    start = time.perf_counter()
    grouping = discover_photos(pipeline, args.kind, crops, config, progress=progress)
    seconds = time.perf_counter() - start
    for bar in bars.values():
        bar.close()
    print(f"load average after: {os.getloadavg()}")
    scores = pair_scores(truth, [g.members for g in grouping.groups])
    links = [e for g in grouping.groups for e in g.pairs]
    false_links = sum(1 for e in links if truth[e.a] != truth[e.b])
    impure = sum(1 for g in grouping.groups if len({truth[i] for i in g.members}) > 1)
    print(
        f"settings: kind={args.kind} limit={args.limit} seed={args.seed} "
        f"neighbours={config.neighbours} link_similarity={config.link_similarity} "
        f"max_group={config.max_group} both_sides={config.both_sides} "
        f"threshold={grouping.threshold}"
    )
    print(
        f"photos={grouping.photos} clusters={grouping.clusters} groups={len(grouping.groups)} "
        f"pairs_checked={grouping.pairs_checked} pairs_confirmed={grouping.pairs_confirmed} "
        f"true_pairs={scores['true_pairs']} proposed_pairs={scores['proposed_pairs']} "
        f"seconds={seconds:.1f}"
    )
    print(
        f"groups joining 2+ individuals: {impure}; links of the groups' spanning trees: "
        f"{len(links)}, {false_links} of them between photos of different individuals"
    )
    print(
        f"pair_precision={scores['pair_precision']:.3f} pair_recall={scores['pair_recall']:.3f} "
        f"one_group={scores['one_group']:.3f} individuals={scores['individuals']} "
        f"photos={grouping.photos}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
