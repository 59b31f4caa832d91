"""Load test of a running Sighting service: N clients posting real 640 px photos to detect.

    python -m bench.load --url http://127.0.0.1:8000 --clients 20 --duration 60 \
        [--api-key K] [--catalog ID] [--writers 0]

Without ``--catalog`` a catalog is created from ``--items`` brand products (group Packages)
of ``--dataset`` (``../shared/data/grocery``), one reference image per item. Frames are that
set's query photos of the same items, resized to 640 px on the long side and JPEG-encoded.
Every client is a thread with its own ``requests.Session`` (keep-alive) that posts frames in a
loop until ``--duration`` seconds have passed; requests already sent then finish (the drain),
and requests/s is counted over the whole wall time, drain included. ``--writers`` threads add
new items meanwhile (a lost write shows as a missing item).

Prints a Markdown table: machine, workers seen (distinct ``X-Sighting-Worker`` pids),
clients, duration, requests, requests/s, p50/p95/p99 latency, errors by kind (HTTP 5xx,
other non-2xx, connection errors, timeouts), how many answers ranked the true item first,
and the catalog's items before/after. Exits 1 when any request failed or an item was lost.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import requests

from bench.results import save_results
from core import cli
from core.dataset import load_groups
from core.errors import BadInput
from core.images import encode_jpeg, list_images, read_image, resize_long_side
from core.settings import REPO_ROOT

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "grocery"
WORKER_HEADER = "X-Sighting-Worker"


@dataclass(frozen=True)
class Frame:
    """One request body: a JPEG frame and the catalog item it shows (None when unknown)."""

    jpeg: bytes
    item_id: str | None


@dataclass
class Outcome:
    """What one client saw (merged after the run)."""

    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    errors: Counter = field(default_factory=Counter)  # kind -> count
    workers: Counter = field(default_factory=Counter)  # pid -> answers
    top1: int = 0  # answers whose best match was the frame's item
    labelled: int = 0  # answers for frames with a known item
    added: list[str] = field(default_factory=list)  # item ids answered 201 (writers)


def package_items(dataset: Path, limit: int) -> list[str]:
    """The first ``limit`` items of the set's Packages group that have catalog images."""
    groups = load_groups(dataset)
    names = sorted(p.name for p in (dataset / "catalog").iterdir() if p.is_dir())
    packages = [n for n in names if groups.get(n) == "Packages"] or names
    return packages[:limit]


def make_frames(dataset: Path, items: list[str], count: int, size: int) -> list[Frame]:
    """``count`` query photos of ``items`` (round robin), resized to ``size`` px, as JPEG."""
    per_item = {
        it: list_images(dataset / "queries" / it)
        for it in items
        if (dataset / "queries" / it).is_dir()
    }
    per_item = {it: paths for it, paths in per_item.items() if paths}
    if not per_item:
        raise BadInput(f"no query photos for {items} under {dataset / 'queries'}")
    frames = []
    for n in range(count):
        item = list(per_item)[n % len(per_item)]
        paths = per_item[item]
        path = paths[(n // len(per_item)) % len(paths)]
        frames.append(
            Frame(encode_jpeg(resize_long_side(read_image(path), size, enlarge=True)[0]), item)
        )
    return frames


def best_item(body: dict) -> str | None:
    """The item of the highest-scoring match over every detection of a detect answer."""
    matches = [m for d in body.get("detections", []) for m in d.get("matches", [])]
    if not matches:
        return None
    return max(matches, key=lambda m: (m["score"], m["similarity"]))["item_id"]


class Client:
    """HTTP calls to one service with one key (a thin wrapper over `requests.Session`)."""

    def __init__(self, url: str, api_key: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers["X-API-Key"] = api_key

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request; raises for a non-2xx answer."""
        r = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if not r.ok:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def create_catalog(self, dataset: Path, items: list[str]) -> str:
        """A new catalog with one item per name (all its catalog images); returns its id."""
        cid = self.call("POST", "/v1/catalogs", json={"name": "bench.load", "kind": "products"})
        catalog_id = cid.json()["id"]
        for item in items:
            paths = list_images(dataset / "catalog" / item)
            files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
            path = f"/v1/catalogs/{catalog_id}/items"
            self.call("POST", path, files=files, data={"item_id": item})
        return catalog_id

    def item_ids(self, catalog_id: str) -> set[str]:
        """Every item id of the catalog."""
        body = self.call("GET", f"/v1/catalogs/{catalog_id}/items").json()
        return {it["item_id"] for it in body["items"]}


def classify(exc: requests.RequestException) -> str:
    """An exception's error kind for the table."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return "other"


def detect_loop(
    client: Client, catalog_id: str, frames: list[Frame], start: int, end: float, out: Outcome
) -> None:
    """Post frames to detect until ``end`` (monotonic), recording into ``out``."""
    path = f"/v1/catalogs/{catalog_id}/detect"
    headers = {"Content-Type": "image/jpeg"}
    for n in itertools.count(start):
        if time.monotonic() >= end:
            return
        frame = frames[n % len(frames)]
        t0 = time.perf_counter()
        try:
            r = client.session.post(
                client.url + path, data=frame.jpeg, headers=headers, timeout=client.timeout
            )
        except requests.RequestException as exc:
            out.errors[classify(exc)] += 1
            continue
        elapsed = time.perf_counter() - t0
        if r.status_code >= 500:
            out.errors["http_5xx"] += 1
            continue
        if not r.ok:
            out.errors[f"http_{r.status_code}"] += 1
            continue
        out.latencies.append(elapsed)
        out.workers[r.headers.get(WORKER_HEADER, "?")] += 1
        if frame.item_id is not None:
            out.labelled += 1
            out.top1 += best_item(r.json()) == frame.item_id


def write_loop(
    client: Client, catalog_id: str, image: bytes, name: str, end: float, out: Outcome
) -> None:
    """Add new items (one small image each) until ``end``, recording the ids answered 201."""
    for n in itertools.count():
        if time.monotonic() >= end:
            return
        item_id = f"{name}-{n}"
        try:
            r = client.session.post(
                f"{client.url}/v1/catalogs/{catalog_id}/items",
                files=[("images", ("ref.jpg", image, "image/jpeg"))],
                data={"item_id": item_id},
                timeout=client.timeout,
            )
        except requests.RequestException as exc:
            out.errors["write_" + classify(exc)] += 1
            continue
        if r.status_code == 201:
            out.added.append(item_id)
        else:
            out.errors[f"write_http_{r.status_code}"] += 1


def merge(outcomes: list[Outcome]) -> Outcome:
    """One `Outcome` for all clients."""
    total = Outcome()
    for o in outcomes:
        total.latencies += o.latencies
        total.errors += o.errors
        total.workers += o.workers
        total.top1 += o.top1
        total.labelled += o.labelled
        total.added += o.added
    return total


def pct_ms(values: list[float], q: float) -> float:
    """The q-quantile of seconds, in milliseconds (nan when empty)."""
    return 1000 * float(np.quantile(values, q)) if values else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="N concurrent clients posting real 640 px photos to a running service's "
        "detect endpoint; prints throughput, latency percentiles and errors by kind.",
        epilog=cli.epilog("Requests that failed or items lost during the run: 1."),
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    p.add_argument("--clients", type=int, default=20, help="concurrent client threads")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    p.add_argument("--api-key", default=os.environ.get("SIGHTING_LOAD_API_KEY"))
    p.add_argument("--catalog", help="an existing catalog id (default: create one)")
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="photo set (layout)")
    p.add_argument("--items", type=int, default=10, help="items of a created catalog")
    p.add_argument("--frames", type=int, default=20, help="distinct frames posted")
    p.add_argument("--size", type=int, default=640, help="long side of posted frames, px")
    p.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, s")
    p.add_argument("--writers", type=int, default=0, help="threads adding items meanwhile")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--save-json",
        type=Path,
        metavar="PATH",
        help="also write the table as a result file for the docs site (docs/benchmarks/load.json)",
    )
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.frames < 1:
        p.error("--clients and --frames must be >= 1 and --duration > 0")
    return args


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin = Client(args.url, args.api_key, args.timeout)
    admin.call("GET", "/healthz")
    dataset = args.dataset.resolve()
    if args.catalog:
        catalog_id = args.catalog
        items = sorted(admin.item_ids(catalog_id))
        on_disk = [it for it in items if (dataset / "queries" / it).is_dir()]
        items = on_disk or package_items(dataset, args.items)
    else:
        items = package_items(dataset, args.items)
        catalog_id = admin.create_catalog(dataset, items)
    frames = make_frames(dataset, items, args.frames, args.size)
    sizes = {tuple(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), 0).shape) for f in frames[:3]}
    before = admin.item_ids(catalog_id)

    # warm-up (not counted): the first call of each worker builds its view of the catalog
    for n in range(4):
        warm = Client(args.url, args.api_key, args.timeout)  # a new connection each time
        warm.call(
            "POST",
            f"/v1/catalogs/{catalog_id}/detect",
            data=frames[n % len(frames)].jpeg,
            headers={"Content-Type": "image/jpeg"},
        )

    outcomes = [Outcome() for _ in range(args.clients + args.writers)]
    t0 = time.monotonic()
    end = t0 + args.duration
    threads = [
        threading.Thread(
            target=detect_loop,
            args=(Client(args.url, args.api_key, args.timeout), catalog_id, frames, i, end, o),
            daemon=True,
        )
        for i, o in enumerate(outcomes[: args.clients])
    ]
    small = list_images(dataset / "catalog" / items[0])[0].read_bytes()
    threads += [
        threading.Thread(
            target=write_loop,
            args=(
                Client(args.url, args.api_key, args.timeout),
                catalog_id,
                small,
                f"load-{int(time.time())}-w{i}",
                end,
                o,
            ),
            daemon=True,
        )
        for i, o in enumerate(outcomes[args.clients :])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    total = merge(outcomes)

    after = admin.item_ids(catalog_id)
    lost = sorted((before | set(total.added)) - after)
    n_ok = len(total.latencies)
    errors = {
        "http_5xx": total.errors.pop("http_5xx", 0),
        "connection": total.errors.pop("connection", 0),
        "timeout": total.errors.pop("timeout", 0),
    }
    errors["other"] = sum(total.errors.values())
    result = {
        "machine": f"{platform.machine()} x{os.cpu_count()} CPU ({platform.system()})",
        "workers_seen": len(total.workers),
        "answers_per_worker": dict(total.workers),
        "clients": args.clients,
        "writers": args.writers,
        "duration_s": args.duration,
        "wall_s": round(wall, 1),
        "frame_px": sorted(sizes),
        "requests": n_ok,
        "requests_per_s": round(n_ok / wall, 2),
        "p50_ms": round(pct_ms(total.latencies, 0.50)),
        "p95_ms": round(pct_ms(total.latencies, 0.95)),
        "p99_ms": round(pct_ms(total.latencies, 0.99)),
        "errors": errors,
        "other_errors": dict(total.errors),
        "top1_right": f"{total.top1}/{total.labelled}",
        "items_before": len(before),
        "items_added": len(total.added),
        "items_after": len(after),
        "items_lost": lost,
    }
    print(table(result, args, catalog_id))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.save_json:
        save_table(args.save_json, result, args)
    failed = sum(errors.values()) > 0 or bool(lost)
    return 1 if failed else 0


def save_table(path: Path, r: dict, args: argparse.Namespace) -> Path:
    """The headline row as a result file (`bench.results`), as the docs' load table shows it."""
    e = r["errors"]
    latency = " / ".join(f"{r[k] / 1000:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms"))
    return save_results(
        path,
        title=f"Load: a real gunicorn under {args.clients} clients",
        columns=[
            "requests (2xx)",
            "requests/s",
            "latency p50 / p95 / p99",
            "errors (5xx, connection, timeout)",
            "top-1 right",
            "items lost",
        ],
        rows=[
            [
                r["requests"],
                r["requests_per_s"],
                f"{latency} s",
                f"{e['http_5xx']} / {e['connection']} / {e['timeout']}",
                r["top1_right"].replace("/", " / "),
                len(r["items_lost"]),
            ]
        ],
        settings={
            "url": args.url,
            "clients": args.clients,
            "writers": args.writers,
            "duration": f"{args.duration:g} s",
            "frames": f"{args.frames} real photos, {args.size} px long side",
            "workers seen": r["workers_seen"],
        },
        machine=r["machine"],
    )


def table(r: dict, args: argparse.Namespace, catalog_id: str) -> str:
    """The results as a Markdown table (pasteable into the README)."""
    e = r["errors"]
    rows = [
        ("machine", r["machine"]),
        ("workers (seen)", f"{r['workers_seen']} {r['answers_per_worker']}"),
        ("clients", str(r["clients"]) + (f" + {r['writers']} writers" if r["writers"] else "")),
        ("duration", f"{r['duration_s']:g} s sending, {r['wall_s']} s wall (drain included)"),
        ("frames", f"{args.frames} real photos, {args.size} px long side, JPEG"),
        ("requests (2xx)", str(r["requests"])),
        ("requests/s", str(r["requests_per_s"])),
        ("latency p50 / p95 / p99", f"{r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} ms"),
        (
            "errors",
            f"5xx {e['http_5xx']}, connection {e['connection']}, timeout {e['timeout']}, "
            f"other {e['other']}" + (f" {r['other_errors']}" if r["other_errors"] else ""),
        ),
        ("top-1 right", r["top1_right"]),
        (
            "items before / added / after",
            f"{r['items_before']} / {r['items_added']} / {r['items_after']}, "
            f"lost {len(r['items_lost'])}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [
        f"bench.load against {args.url} (catalog {catalog_id})",
        "",
        f"| {'':{width}} | result |",
        f"|{'-' * (width + 2)}|--------|",
    ]
    lines += [f"| {k:{width}} | {v} |" for k, v in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
