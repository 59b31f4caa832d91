"""Fine-tune an embedder on a set in the data layout: a projection head, optionally the backbone.

    python -m embedding.train ../shared/data/dogs --base mobilenet_v2 --out weights/x.head \\
        --holdout-identities 0.2 --flip [--finetune-epochs 8]

The items' catalog and query photos are the training identities (``queries/_none`` is never
read). By default the backbone stays frozen: its pooled features are computed once per photo
(a clean view plus ``--views`` augmented ones: random crop, colour jitter, optional flip), then
a `embedding.head.ProjectionHead` is trained on them with sub-center ArcFace (seconds).
``--finetune-epochs N`` trains the backbone too (`embedding.finetune`: photos augmented afresh
each epoch, minutes per epoch on a CPU) and stores it in the head file. Each epoch
reports embedding-only recall@1/@5 on photos it never trained on: the query photos of
held-out identities (``--holdout-identities``) and/or the benchmark's query sample
(``--exclude-benchmark-sample``), each searched among ALL catalog photos, next to the
base backbone's recall on the same split. Exit code 2 with a message for a set it cannot
train or validate on.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from core import cli
from core.errors import BadInput
from embedding.embedder import Embedder, EmbedderConfig
from embedding.finetune import FinetuneConfig, finetune
from embedding.head import HeadCheckpoint, ProjectionHead, WithHead, save_head
from embedding.losses import SubCenterArcFace
from embedding.photos import augment, load_photos, read_photos
from embedding.schedule import one_cycle
from embedding.trainset import Photo, benchmark_photos, holdout_identities, scan_set

log = logging.getLogger("embedding.train")

MIN_VAL_QUERIES = 2


class TrainError(Exception):
    """A set that cannot be trained or validated on (exit code 2)."""


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training run."""

    dim: int = 256
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    margin: float = 0.3
    scale: float = 30.0
    subcenters: int = 1
    views: int = 2  # augmented views per photo, besides the clean one
    flip: bool = False  # horizontal flips (off for products: text reads backwards)
    seed: int = 0


def extract_features(
    base: Embedder, photos: list[Photo], views: int, flip: bool, seed: int, desc: str
) -> tuple[np.ndarray, list[int]]:
    """Pooled backbone features of each photo's clean view and ``views`` augmented views.

    Returns:
        float32 (N, 1 + views, D) for the N readable photos, and their indices in ``photos``
        (unreadable photos are skipped with a warning).
    """
    rng = np.random.default_rng(seed)
    feats: list[np.ndarray] = []
    kept: list[int] = []
    with torch.inference_mode():
        for i, image in read_photos([p.path for p in photos], desc):
            crops = [image] + [augment(image, rng, flip) for _ in range(views)]
            batch = torch.cat([base.preprocess(c) for c in crops]).to(base.dtype)
            feats.append(base.model(batch).float().cpu().numpy())
            kept.append(i)
    dim = base.dim
    return (np.stack(feats) if feats else np.zeros((0, 1 + views, dim), np.float32)), kept


def cached_features(
    base: Embedder,
    photos: list[Photo],
    cfg: TrainConfig,
    cache_dir: Path | None,
) -> tuple[np.ndarray, list[int]]:
    """`extract_features`, stored in ``cache_dir`` keyed by photos, model and augmentation."""
    key = hashlib.sha256(
        "\n".join(
            [base.fingerprint, str(base.config), str((cfg.views, cfg.flip, cfg.seed))]
            + [f"{p.path.resolve()}:{p.path.stat().st_size}" for p in photos]
        ).encode()
    ).hexdigest()[:16]
    path = cache_dir / f"features-{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        data = np.load(path)
        return data["feats"], data["kept"].tolist()
    feats, kept = extract_features(base, photos, cfg.views, cfg.flip, cfg.seed, "features")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, feats=feats, kept=np.asarray(kept, np.int64))
    return feats, kept


def recall_at(
    queries: np.ndarray, q_items: np.ndarray, gallery: np.ndarray, g_items: np.ndarray
) -> tuple[float, float]:
    """Recall@1/@5 of item retrieval by cosine (best gallery photo per item).

    Args:
        queries: float (Q, D); q_items: (Q,) item index of each query.
        gallery: float (G, D); g_items: (G,) item index of each gallery photo.
    """
    if len(queries) == 0:
        return 0.0, 0.0
    q = F.normalize(torch.as_tensor(queries, dtype=torch.float32), dim=1)
    g = F.normalize(torch.as_tensor(gallery, dtype=torch.float32), dim=1)
    sims = q @ g.T  # (Q, G)
    n_items = int(max(g_items.max(), q_items.max())) + 1
    per_item = torch.full((len(q), n_items), -2.0)
    per_item.scatter_reduce_(
        1, torch.as_tensor(g_items).expand(len(q), -1), sims, reduce="amax", include_self=True
    )
    true = per_item.gather(1, torch.as_tensor(q_items)[:, None])
    rank = (per_item > true).sum(dim=1)  # items strictly better than the true one
    return float((rank < 1).float().mean()), float((rank < 5).float().mean())


def _head_features(head: ProjectionHead, feats: np.ndarray, device: torch.device) -> np.ndarray:
    head.eval()
    with torch.inference_mode():
        return head(torch.as_tensor(feats, device=device)).cpu().numpy()


def embed_images(
    model: torch.nn.Module, base: Embedder, images: list[np.ndarray], batch_size: int = 64
) -> np.ndarray:
    """``model`` (eval mode) on each clean photo, preprocessed as ``base`` does:
    uint8 (h, w, 3) images -> float32 (N, D) un-normalised."""
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            batch = torch.cat([base.preprocess(im) for im in images[s : s + batch_size]])
            out.append(model(batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, base.dim), np.float32)


def _recalls(
    emb: np.ndarray, labels: np.ndarray, is_catalog: np.ndarray, splits: dict[str, np.ndarray]
) -> dict[str, float]:
    """``{split}_recall@1/@5`` of each split's queries among all catalog photos; ``emb``:
    float (N, D) of every photo."""
    out = {}
    for name, m in splits.items():
        r1, r5 = recall_at(emb[m], labels[m], emb[is_catalog], labels[is_catalog])
        out[f"{name}_recall@1"], out[f"{name}_recall@5"] = r1, r5
    return out


def _train_head(
    head: ProjectionHead,
    loss_fn: SubCenterArcFace,
    feats: np.ndarray,
    labels: np.ndarray,
    remap: np.ndarray,
    train_mask: np.ndarray,
    is_catalog: np.ndarray,
    splits: dict[str, np.ndarray],
    cfg: TrainConfig,
) -> dict[str, float]:
    """Train ``head`` on cached backbone features ``feats`` float32 (N, V, F) of every view;
    returns the last epoch's validation recalls (clean views)."""
    device = next(head.parameters()).device
    x_train = torch.as_tensor(feats[train_mask].reshape(-1, feats.shape[-1]), device=device)
    y_train = torch.as_tensor(np.repeat(remap[labels[train_mask]], feats.shape[1]), device=device)
    params = list(head.parameters()) + list(loss_fn.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(x_train) / cfg.batch_size)
    sched = one_cycle(opt, cfg.lr, steps)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    results: dict[str, float] = {}
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch", file=sys.stderr)
    for epoch in bar:
        head.train()
        order = torch.randperm(len(x_train), generator=gen).to(device)
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            loss = loss_fn(head(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        results = _recalls(_head_features(head, feats[:, 0], device), labels, is_catalog, splits)
        shown = {k.replace("_recall", ""): f"{v:.3f}" for k, v in results.items()}
        bar.set_postfix(loss=f"{total / len(x_train):.3f}", **shown)
        tqdm.write(
            f"epoch {epoch + 1}/{cfg.epochs} loss={total / len(x_train):.3f} "
            + " ".join(f"{k}={v:.3f}" for k, v in results.items()),
            file=sys.stderr,
        )
    return results


def _split(
    photos: list[Photo],
    item_index: dict[str, int],
    held_out: frozenset[str],
    bench: frozenset[Path],
    dataset: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Labels, catalog mask, training mask and validation masks (by split name) of photos.

    Validation photos are query photos never trained on; they are searched among ALL
    catalog photos (held-out identities' catalog photos included).

    Raises:
        TrainError: fewer than `MIN_VAL_QUERIES` validation photos, or < 2 training items.
    """
    labels = np.array([item_index[p.item] for p in photos], np.int64)
    is_catalog = np.array([p.role == "catalog" for p in photos], bool)
    in_bench = np.array([p.path.resolve() in bench for p in photos], bool)
    in_held = np.array([p.item in held_out for p in photos], bool)
    train_mask = ~in_bench & ~in_held
    splits = {}
    if held_out:
        splits["identities"] = ~is_catalog & in_held
    if bench:
        splits["benchmark"] = ~is_catalog & in_bench & ~in_held
    splits = {k: m for k, m in splits.items() if m.sum() >= MIN_VAL_QUERIES}
    if not splits:
        raise TrainError(
            f"{dataset} is too small to validate: fewer than {MIN_VAL_QUERIES} query photos "
            "of held-out identities or of the benchmark sample (use --holdout-identities and/or "
            "--exclude-benchmark-sample on a set with several photos per item)"
        )
    n_train = len(set(labels[train_mask].tolist()))
    if n_train < 2:
        raise TrainError(f"{dataset} leaves {n_train} identities to train on; need >= 2")
    return labels, is_catalog, train_mask, splits


def train(argv: list[str] | None = None) -> dict[str, float]:
    """Run the command; returns the final validation recalls.

    Raises:
        TrainError: a set it cannot train or validate on.
    """
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from core.runtime import resolve_device
    from weights.registry import FILES, MODELS, resolve, sha256_of

    cfg = TrainConfig(
        dim=args.dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        margin=args.margin,
        subcenters=args.subcenters,
        views=args.views,
        flip=args.flip,
        seed=args.seed,
    )
    torch.manual_seed(cfg.seed)
    try:
        dataset = scan_set(args.dataset)
    except BadInput as exc:
        raise TrainError(str(exc)) from None
    for note in dataset.notes:
        print(f"note: {note}", file=sys.stderr)
    if len(dataset.items) < 2:
        raise TrainError(f"{args.dataset} has {len(dataset.items)} usable item(s); need >= 2")

    held_out = holdout_identities(dataset.items, args.holdout_identities, args.holdout_seed)
    bench = benchmark_photos(dataset.root, args.exclude_benchmark_sample)
    spec = MODELS.get(args.base)
    if spec is None or spec.stage != "embedder" or spec.format == "head":
        raise TrainError(f"--base must be a backbone embedder, not {args.base!r}")
    device = resolve_device(args.device)
    base_path = resolve(spec.files[0], args.weights_dir)
    # float32 on every device: it may be fine-tuned
    base = Embedder.from_weights(
        spec.name, base_path, device, EmbedderConfig(resize="pad", half=False)
    )

    photos = list(dataset.photos)
    item_index = {item: i for i, item in enumerate(dataset.items)}
    _split(photos, item_index, held_out, bench, args.dataset)  # fail fast, before features
    if args.finetune_epochs:  # photos in memory, augmented afresh each epoch
        images, kept = load_photos([p.path for p in photos], 2 * base.config.input_size)
        clean = embed_images(base.model, base, images)  # (N, F) base features, clean views
    else:  # base features of a few augmented views, computed once
        feats, kept = cached_features(base, photos, cfg, args.cache_dir)
        clean = feats[:, 0]
    photos = [photos[i] for i in kept]
    if not photos:
        raise TrainError(f"no readable photos in {args.dataset}")
    labels, is_catalog, train_mask, splits = _split(
        photos, item_index, held_out, bench, args.dataset
    )
    train_items = sorted(set(labels[train_mask].tolist()))
    counts = np.bincount(labels[train_mask], minlength=len(dataset.items))
    single = int((counts[train_items] == 1).sum())
    if single:
        print(
            f"note: {single} of {len(train_items)} training identities have one photo: they "
            "are trained from its augmented views and serve as negatives for the others",
            file=sys.stderr,
        )
    # ArcFace classes: the training identities only (re-indexed)
    remap = np.full(len(dataset.items), -1, np.int64)
    remap[train_items] = np.arange(len(train_items))
    baseline = _recalls(clean, labels, is_catalog, splits)
    for name in splits:
        print(
            f"baseline ({args.base}) {name}: recall@1={baseline[f'{name}_recall@1']:.3f} "
            f"recall@5={baseline[f'{name}_recall@5']:.3f} queries={int(splits[name].sum())}",
            file=sys.stderr,
        )

    head = ProjectionHead(clean.shape[-1], cfg.dim).to(device)
    loss_fn = SubCenterArcFace(cfg.dim, len(train_items), cfg.subcenters, cfg.scale, cfg.margin)
    loss_fn.to(device)
    start = time.perf_counter()
    if args.finetune_epochs:
        model = WithHead(base.model, head)

        def evaluate() -> dict[str, float]:
            emb = embed_images(model, base, images)
            return _recalls(emb, labels, is_catalog, splits)

        results = finetune(
            base.model,
            head,
            loss_fn,
            [images[i] for i in np.flatnonzero(train_mask)],
            remap[labels[train_mask]],
            base.preprocess,
            FinetuneConfig(
                epochs=args.finetune_epochs,
                warmup=args.warmup_epochs,
                head_lr=cfg.lr,
                backbone_lr=args.backbone_lr,
                flip=cfg.flip,
                seed=cfg.seed,
            ),
            evaluate,
        )
    else:
        results = _train_head(
            head, loss_fn, feats, labels, remap, train_mask, is_catalog, splits, cfg
        )
    results |= {f"baseline_{k}": v for k, v in baseline.items()}

    trained_on = (
        f"{Path(args.dataset).name}: {int(train_mask.sum())} photos of {len(train_items)} "
        f"identities (held out: {len(held_out)} identities, "
        f"{int(splits['benchmark'].sum()) if 'benchmark' in splits else 0} benchmark-sample "
        "query photos; _none never used)"
    )
    command = "python -m embedding.train " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    save_head(
        args.out,
        HeadCheckpoint(
            base=spec.name,
            base_file=spec.files[0],
            base_sha256=FILES[spec.files[0]].sha256 or sha256_of(base_path),
            in_dim=clean.shape[-1],
            dim=cfg.dim,
            input_size=base.config.input_size,
            resize=base.config.resize,
            head={k: v.cpu() for k, v in head.state_dict().items()},
            backbone=(
                {k: v.cpu() for k, v in base.model.state_dict().items()}
                if args.finetune_epochs
                else None
            ),
            trained_on=trained_on,
            command=command,
            val_recall=results,
        ),
    )
    print(
        f"wrote {args.out} ({Path(args.out).stat().st_size} bytes, sha256 "
        f"{sha256_of(Path(args.out))}) in {time.perf_counter() - start:.1f} s of training",
        file=sys.stderr,
    )
    print(" ".join(f"{k}={v:.3f}" for k, v in results.items()))
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    from core.settings import get_settings

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m embedding.train",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=cli.epilog("A set it cannot train or validate on is bad input (2)."),
    )
    p.add_argument("dataset", type=Path, help="a set in the data layout (catalog/, queries/)")
    p.add_argument("--base", default="mobilenet_v2", help="backbone embedder (registry name)")
    p.add_argument("--out", type=Path, required=True, help="head file to write")
    p.add_argument(
        "--holdout-identities",
        type=float,
        default=0.2,
        help="fraction of items (seeded) never trained on; their queries validate",
    )
    p.add_argument(
        "--exclude-benchmark-sample",
        type=int,
        default=0,
        help="leave out the benchmark's N-query sample (seed 0) and validate on it",
    )
    p.add_argument("--dim", type=int, default=d.dim, help="embedding length")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--margin", type=float, default=d.margin, help="ArcFace angular margin")
    p.add_argument("--subcenters", type=int, default=d.subcenters, help="ArcFace centres/class")
    p.add_argument("--views", type=int, default=d.views, help="augmented views per photo")
    p.add_argument("--flip", action="store_true", help="augment with horizontal flips")
    p.add_argument("--seed", type=int, default=d.seed, help="augmentation and training seed")
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=0,
        help="also fine-tune the backbone for N epochs on photos augmented afresh each epoch "
        "(0: head only, on cached features; the head learns from --warmup-epochs first)",
    )
    p.add_argument(
        "--warmup-epochs", type=int, default=1, help="with --finetune-epochs: head-only epochs"
    )
    p.add_argument(
        "--backbone-lr", type=float, default=2e-4, help="with --finetune-epochs: backbone lr"
    )
    p.add_argument(
        "--holdout-seed",
        type=int,
        default=0,
        help="seed of the held-out identities (tune on another seed than the one reported)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help="folder with the base weights (default: SIGHTING_WEIGHTS_DIR)",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="reuse extracted features here")
    args = p.parse_args(argv)
    if args.weights_dir is None:
        args.weights_dir = get_settings().weights_dir
    if not 0 <= args.holdout_identities < 1 or args.views < 0 or args.epochs < 1 or args.dim < 2:
        p.error("need 0 <= --holdout-identities < 1, --views >= 0, --epochs >= 1, --dim >= 2")
    if args.finetune_epochs < 0 or args.warmup_epochs < 0:
        p.error("need --finetune-epochs >= 0 and --warmup-epochs >= 0")
    return args


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Exit code 0 on success, 2 on a set it cannot train or validate on (`core.cli`)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        train(argv)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
