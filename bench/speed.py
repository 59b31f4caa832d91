"""Per-stage speed of the pipeline on this machine, and memory for a large catalog.

    python -m bench.speed [--catalog ../shared/data/grocery/catalog] [--frames 20]
    python -m bench.speed --runtimes torch,openvino,onnxruntime --precisions fp32,int8

Frames are ultralytics' sample photos (bus.jpg, zidane.jpg) resized to 640 px and JPEG-encoded,
so decoding is measured too. After a warm-up, prints p50/p95 milliseconds of decode, detect,
embed and search per frame, frames per second for decode+detect+embed+search, and the time to
verify one crop against its 5 best candidates (catalog keypoints cached). Then builds a
synthetic catalog of ``--synthetic`` images (vectors in the index, keypoints behind the LRU)
and prints the process's resident memory.

With ``--runtimes``, prints instead the detector (640 px frame) and the embedder (the frame's
crops, one batch) per runtime and precision, p50/p95 ms and the ratio to torch, each timed
frame running every combination in turn (so a busy machine slows them alike); int8 runs the
exports ``python -m matching.quantize`` wrote. Last line: ``key=value`` per combination.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from bench.machine import describe
from core import cli
from core.images import decode_image, encode_jpeg, read_image
from core.runtime import configure_threads, prepare_environment
from core.settings import get_settings
from matching.catalog_view import CatalogView, FeatureCache
from matching.engine import load_pipeline
from matching.features import LocalFeatures
from matching.folder_catalog import load_folder_catalog, scan_catalog
from matching.index import VectorIndex
from matching.pipeline import PipelineConfig, Timer


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample_frames() -> list[bytes]:
    """The wheel's sample photos at 640 px long side, as JPEG bytes."""
    prepare_environment()
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    frames = []
    for name in ("bus.jpg", "zidane.jpg"):
        img = read_image(assets / name)
        scale = 640 / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
        frames.append(encode_jpeg(img))
    return frames


def pct(values: list[float], q: float) -> float:
    """The q-quantile of values, in milliseconds."""
    return 1000 * float(np.quantile(values, q)) if values else float("nan")


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed", description=__doc__.split("\n")[1], epilog=cli.EXIT_STATUS
    )
    parser.add_argument("--catalog", type=Path, default=Path("../shared/data/grocery/catalog"))
    parser.add_argument("--frames", type=int, default=20, help="timed frames after warm-up")
    parser.add_argument("--synthetic", type=int, default=100_000, help="images in the memory test")
    parser.add_argument(
        "--runtimes", default="", help="comma-separated runtimes: time detect/embed on each"
    )
    parser.add_argument("--precisions", default="fp32", help="with --runtimes: fp32,int8")
    parser.add_argument(
        "--embedder", default="products", help="with --runtimes: the embedder model timed"
    )
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.runtimes:
        runtime_table(
            settings,
            args.runtimes.split(","),
            args.precisions.split(","),
            args.embedder,
            args.frames,
        )
        return 0
    scan_catalog(args.catalog)  # a missing catalog fails before models load
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, args.catalog, progress=False)
    frames = sample_frames()
    config = PipelineConfig.from_settings(settings, top_k=5, shortlist=5)  # as printed below
    unverified = PipelineConfig.from_settings(settings, verify=False)
    stages: dict[str, list[float]] = {s: [] for s in ("decode", "detect", "embed", "search")}
    totals, verify = [], []
    for i in range(args.frames + 3):
        data = frames[i % len(frames)]
        timer = Timer()
        start = time.perf_counter()
        with timer.stage("decode"):
            image = decode_image(data)
        result = pipeline.match_frames([image], catalog, unverified)[0]
        total = time.perf_counter() - start
        det = result.detections
        objects = np.flatnonzero(det.class_id >= 0)
        best = int(objects[np.argmax(det.confidence[objects])]) if len(objects) else 0
        crop = det.data["crop"][best]
        vec = pipeline.embedder_for("products").embed([crop])
        vtimer = Timer()
        pipeline.match_vectors(vec, [crop], catalog, config, vtimer)
        if i < 3:  # warm-up
            continue
        for name in ("detect", "embed", "search"):
            stages[name].append(result.timings.get(name, 0.0))
        stages["decode"].append(timer.seconds["decode"])
        totals.append(total)
        verify.append(vtimer.seconds.get("verify", 0.0))

    print(describe(settings))
    print(
        f"frames: bus.jpg/zidane.jpg at 640 px, JPEG; catalog {args.catalog} "
        f"({len(catalog.index.items)} items); {args.frames} timed frames after 3 warm-up"
    )
    print(f"{'stage':<34}{'p50 ms':>10}{'p95 ms':>10}")
    for name, values in stages.items():
        print(f"{name:<34}{pct(values, 0.5):>10.1f}{pct(values, 0.95):>10.1f}")
    print(f"{'decode+detect+embed+search':<34}{pct(totals, 0.5):>10.1f}{pct(totals, 0.95):>10.1f}")
    v50, v95 = pct(verify, 0.5), pct(verify, 0.95)
    print(f"{'verify 1 crop vs 5 candidates':<34}{v50:>10.1f}{v95:>10.1f}")
    print(f"frames/s (decode+detect+embed+search, batch 1): {1 / statistics.median(totals):.1f}")

    memory_test(pipeline, args.catalog, settings.keypoint_cache, args.synthetic)
    return 0


def runtime_table(
    settings, runtimes: list[str], precisions: list[str], embedder: str, frames: int
) -> None:
    """Detect and embed timed per runtime and precision, interleaved frame by frame."""
    from detection import load_detector
    from embedding import load_embedder

    images = [decode_image(f) for f in sample_frames()]
    combos = []
    for runtime in runtimes:
        for precision in precisions:
            if runtime == "torch" and precision != "fp32":
                continue
            s = settings.model_copy(
                update={
                    "runtime": runtime,
                    "embedder": embedder,
                    "detector_precision": precision,
                    "embedder_precision": precision,
                }
            )
            combos.append((f"{runtime}/{precision}", load_detector(s), load_embedder(s)))
    configure_threads(settings.threads)
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(frames + 2):
        image = images[i % len(images)]
        for name, det, emb in combos:
            start = time.perf_counter()
            crops = list(det.detect([image])[0].data["crop"])
            mid = time.perf_counter()
            emb.embed(crops)
            end = time.perf_counter()
            if i >= 2:  # warm-up
                times.setdefault((name, "detect"), []).append(mid - start)
                times.setdefault((name, "embed"), []).append(end - mid)
    print(describe(settings))
    print(
        f"frames: bus.jpg/zidane.jpg at 640 px; embedder {embedder}, the frame's crops in one "
        f"batch; {frames} timed frames after 2 warm-up, combinations interleaved"
    )
    print(f"{'stage':<8}{'runtime':<22}{'ran as':<22}{'p50 ms':>9}{'p95 ms':>9}{'x torch':>9}")
    finals = []
    for stage in ("detect", "embed"):
        base = pct(times.get(("torch/fp32", stage), []), 0.5)
        for name, det, emb in combos:
            ran = det.runtime if stage == "detect" else emb.runtime
            values = times[(name, stage)]
            p50 = pct(values, 0.5)
            print(
                f"{stage:<8}{name:<22}{ran.runtime + '/' + ran.precision:<22}{p50:>9.1f}"
                f"{pct(values, 0.95):>9.1f}{base / p50:>9.2f}"
            )
            finals.append(f"{stage}_{name.replace('/', '_')}_p50_ms={p50:.1f}")
    print(" ".join(finals))


def memory_test(pipeline, catalog_dir: Path, cache_size: int, n_images: int) -> None:
    """Resident memory with a synthetic catalog of ``n_images`` images behind the LRU."""
    before = rss_mb()
    dim = pipeline.embedder_for("products").dim
    rng = np.random.default_rng(0)
    index = VectorIndex(dim)
    for start in range(0, n_images, 10_000):
        n = min(10_000, n_images - start)
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = [f"img{start + j}" for j in range(n)]
        index.add(vecs, [f"item{(start + j) // 2}" for j in range(n)], ids)
    sample = None
    if pipeline.verifier is not None:
        sample = pipeline.verifier.extract(read_image(next(Path(catalog_dir).glob("*/*"))))
    k = len(sample) if sample is not None else 512
    d = sample.descriptors.shape[1] if sample is not None else 128

    def loader(image_id: str) -> LocalFeatures:
        return LocalFeatures(
            keypoints=rng.random((k, 2), dtype=np.float32) * 300,
            descriptors=rng.standard_normal((k, d)).astype(np.float32),
            scores=rng.random(k, dtype=np.float32),
            image_size=(300, 300),
        )

    view = CatalogView("synthetic", "products", index, FeatureCache(loader, cache_size))
    touched = min(n_images, 5 * max(cache_size, 1))
    for i in range(touched):  # more distinct images than the LRU holds, as a worker over time
        view.features.get(f"img{i}")
    q = rng.standard_normal((8, dim)).astype(np.float32)
    t0 = time.perf_counter()
    index.search(q / np.linalg.norm(q, axis=1, keepdims=True), 100)
    search_ms = (time.perf_counter() - t0) * 1000 / 8
    per_image_kb = k * (d * 4 + 12) / 1024
    print(
        f"\nsynthetic catalog: {n_images} images, {len(index)} vectors of {dim} d, "
        f"keypoints {k} x {d} per image (~{per_image_kb:.0f} KiB), LRU size {cache_size}"
    )
    print(
        f"resident memory: {before:.0f} MiB before, {rss_mb():.0f} MiB after "
        f"(all keypoints in memory would need ~{n_images * per_image_kb / 1024:.0f} MiB); "
        f"search top-100: {search_ms:.1f} ms/query"
    )


if __name__ == "__main__":
    raise SystemExit(main())
