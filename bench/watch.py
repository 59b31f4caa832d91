"""Watches on a dev set: lost dogs alerted from a shelter's intake, false alerts, delivery time.

    python -m bench.watch ../shared/data/dogs --kind animals --limit 6

The set's catalog photos of ``--limit`` seeded dogs are the owners' lost dogs (one catalog,
one watch at the default score ``SIGHTING_WATCH_MIN_SCORE`` with a webhook to a real receiver
on 127.0.0.1). The intake (a second catalog, one new item per photo) is, in a seeded order:
up to 3 query photos of each lost dog, and as many photos of dogs nobody lost (query photos
of the set's other dogs and its ``_none`` photos). Photos arrive one by one through the real
upload path (what ``POST /v1/catalogs/<id>/items`` does: describe the photo, store it,
queue the watch's matching); after each, the queued jobs (``watch.match``
after its debounce, ``watch.deliver``) run here, one after the other, as a consumer with one
thread would, so every figure is sequential: upload -> debounce -> match -> signed POST.

Figures: ``alerted@k`` = share of lost dogs with an alert pairing them with one of their
first k intake photos; ``false_alerts_per_100`` = alerts whose intake photo shows another dog
(or none of the lost), per 100 intake photos; ``delivery_p50_s``/``p95_s`` = seconds from the
start of an upload to the receiver's getting its alert (includes the debounce and the upload's
own model work). The last line is ``key=value``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import time
from pathlib import Path

from core import cli
from core.dataset import NONE
from core.kinds import KINDS


def _photos(folder: Path) -> list[Path]:
    from core.images import list_images

    return list_images(folder) if folder.is_dir() else []


def plan(dataset: Path, limit: int, seed: int) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """The lost dogs (item -> catalog photo) and the intake (photo, true item or "" ) in
    arrival order."""
    rng = random.Random(seed)
    catalog = {p.name: _photos(p) for p in sorted((dataset / "catalog").iterdir()) if p.is_dir()}
    queries = dataset / "queries"
    with_queries = [d for d in catalog if catalog[d] and _photos(queries / d)]
    lost = sorted(rng.sample(with_queries, min(limit, len(with_queries))))
    intake = [(p, d) for d in lost for p in _photos(queries / d)[:3]]
    others = [d for d in with_queries if d not in lost]
    strangers = [(rng.choice(_photos(queries / d)), "") for d in rng.sample(others, limit)]
    strangers += [(p, "") for p in rng.sample(_photos(queries / NONE), min(limit, 3))]
    intake += rng.sample(strangers, min(len(strangers), len(intake) // 2 or 1))
    rng.shuffle(intake)
    return {d: catalog[d][0] for d in lost}, intake


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.watch",
        description=__doc__.split("\n\n")[0],
        epilog=cli.EXIT_STATUS,
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (../shared/data/dogs)")
    parser.add_argument("--kind", default="animals", choices=KINDS, help="catalog kind")
    parser.add_argument("--limit", type=int, default=10, help="lost dogs (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from bench.machine import describe
    from catalog.cache import model_fingerprints
    from catalog.repository import CatalogRepository, NewImage
    from catalog.stores import open_store
    from core.images import read_image
    from core.settings import get_settings
    from jobs.queue import JobQueue
    from jobs.runner import run_job
    from matching.engine import load_pipeline
    from matching.references import to_blobs
    from watches.receiver import Receiver
    from watches.service import Watches, parse_watch, schedule_match

    logging.basicConfig(level=logging.WARNING)
    lost, intake = plan(args.dataset, args.limit, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    settings = get_settings().model_copy(
        update={
            "data_dir": workdir / "store",
            "storage": "local",
            "queue_url": "",
            "webhook_allow": ["127.0.0.1"],
            "job_modules": ["watches.job"],
        }
    )
    pipeline = load_pipeline(settings)
    import matching.engine
    import watches.job  # noqa: F401 - registers the job kinds

    matching.engine.shared_pipeline = lambda s: pipeline  # one model set in this process
    store = open_store(settings)
    repository = CatalogRepository(store)
    queue = JobQueue(settings, store)
    owner = "bench"

    def upload(cid: str, item: str, path: Path) -> None:
        """What ``POST /v1/catalogs/<id>/items`` does: describe, store, queue the watches."""
        pixels = read_image(path)
        ref = pipeline.describe_reference(pixels, args.kind)
        h, w = pixels.shape[:2]
        image = NewImage(path.read_bytes(), "image/jpeg", w, h, to_blobs(ref))
        repository.add_images(cid, item, None, [image], model_fingerprints(pipeline, args.kind))
        schedule_match(queue, cid, owner)

    def run_queued() -> None:
        """A consumer with one thread: run what is queued, oldest first, until idle."""
        while True:
            records = [queue.jobs.get(j) for j in queue.jobs.list_ids()]
            queued = sorted((r for r in records if r.state == "queued"), key=lambda r: r.created_at)
            if not queued:
                return
            for record in queued:
                run_job(queue.jobs, record.job_id, settings=settings, heartbeat_s=5.0)

    print(describe(settings))
    print(f"load average before: {os.getloadavg()}")
    lost_cid = repository.create_catalog("lost", args.kind, owner).catalog_id
    for dog, path in tqdm(sorted(lost.items()), desc="lost dogs", unit="dog"):
        upload(lost_cid, f"lost-{dog}", path)
    found_cid = repository.create_catalog("intake", args.kind, owner).catalog_id
    truth: dict[str, str] = {}
    started: dict[str, float] = {}
    watches = Watches(store, queue)
    with Receiver() as receiver:
        body = {"watched_catalog": lost_cid, "source_catalog": found_cid}
        watch = parse_watch(
            body | {"webhook_url": receiver.url},
            owner,
            settings.watch_min_score,
            tuple(settings.webhook_allow),
        )
        watch = watches.create(watch)
        receiver.secret = watch.secret
        run_queued()  # the scan (nothing in the intake yet)
        for i, (path, dog) in enumerate(tqdm(intake, desc="intake", unit="photo")):
            item = f"in{i:04d}"
            truth[item] = f"lost-{dog}" if dog else ""
            started[item] = time.time()
            upload(found_cid, item, path)
            run_queued()
        alerts = [a.to_public(watch) for a in watches.store.alerts(watch.watch_id)]
        received = dict(receiver.accepted)
        bad = receiver.bad_signatures
    min_score = watch.min_score
    order = {f"in{i:04d}": i for i in range(len(intake))}
    first_photos: dict[str, list[str]] = {}
    for item in sorted(truth, key=order.get):
        if truth[item]:
            first_photos.setdefault(truth[item], []).append(item)
    right = {(a["watched"]["item_id"], a["source"]["item_id"]) for a in alerts}
    alerted = {
        k: sum(any((d, it) in right for it in first_photos.get(d, [])[:k]) for d in lost_ids)
        / max(1, len(lost_ids))
        for k in (1, 2, 3)
        for lost_ids in [[f"lost-{d}" for d in lost]]
    }
    false = sum(1 for a in alerts if truth[a["source"]["item_id"]] != a["watched"]["item_id"])
    delays = [
        received[a["id"]]["received_at"] - started[a["source"]["item_id"]]
        for a in alerts
        if a["id"] in received
    ]
    lost_alerts = len(alerts) - len(received)
    print(f"load average after: {os.getloadavg()}")
    print(
        f"watch min_score={min_score} debounce_s={settings.watch_debounce_s} "
        f"alerts={len(alerts)} delivered={len(received)} bad_signatures={bad}"
    )
    print("| lost dogs | intake photos | alerted@1 | alerted@2 | alerted@3 | false alerts/100 |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {len(lost)} | {len(intake)} | {alerted[1]:.3f} | {alerted[2]:.3f} | {alerted[3]:.3f} "
        f"| {100 * false / max(1, len(intake)):.1f} |"
    )
    print(
        f"alerted@1={alerted[1]:.3f} alerted@3={alerted[3]:.3f} "
        f"false_alerts_per_100={100 * false / max(1, len(intake)):.1f} "
        f"delivery_p50_s={_percentile(delays, 50):.2f} "
        f"delivery_p95_s={_percentile(delays, 95):.2f} "
        f"lost={len(lost)} intake={len(intake)} undelivered={lost_alerts}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
