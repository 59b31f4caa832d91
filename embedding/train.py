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

From Python: ``train(dataset, out, TrainConfig(...))`` runs the same and returns a
`TrainResult`; `main` is the command line around it.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from embedding.trainset import Photo, TrainSet, benchmark_photos, holdout_identities, scan_set
from weights.registry import FILES, MODELS, ModelSpec, resolve, sha256_of

log = logging.getLogger("embedding.train")

MIN_VAL_QUERIES = 2


class TrainError(BadInput):
    """A set that cannot be trained or validated on (the command's exit code 2)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one training run (the command's flags, with its defaults)."""

    base: str = "mobilenet_v2"  # backbone embedder (registry name)
    holdout_identities: float = 0.2  # fraction of items (seeded) never trained on
    holdout_seed: int = 0  # seed of the held-out identities
    exclude_benchmark_sample: int = 0  # leave out the benchmark's N-query sample, validate on it
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
    finetune_epochs: int = 0  # also fine-tune the backbone (0: head only, on cached features)
    warmup_epochs: int = 1  # with finetune_epochs: head-only epochs first
    backbone_lr: float = 2e-4  # with finetune_epochs

    def __post_init__(self) -> None:
        if not 0 <= self.holdout_identities < 1 or self.views < 0 or self.epochs < 1:
            raise BadInput("TrainConfig needs 0 <= holdout_identities < 1, views >= 0, epochs >= 1")
        if self.dim < 2 or self.finetune_epochs < 0 or self.warmup_epochs < 0:
            raise BadInput("TrainConfig needs dim >= 2, finetune_epochs >= 0, warmup_epochs >= 0")


@dataclass(frozen=True)
class TrainResult:
    """What one training run wrote and measured.

    Attributes:
        out: the head file written.
        checkpoint: its contents (`embedding.head.HeadCheckpoint`).
        val_recall: the last epoch's ``{split}_recall@1/@5`` and the base backbone's
            ``baseline_{split}_recall@1/@5`` on the same split.
        seconds: wall time of the training itself (head or fine-tuning, and saving).
    """

    out: Path
    checkpoint: HeadCheckpoint
    val_recall: dict[str, float]
    seconds: float


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


def _base_embedder(
    config: TrainConfig, weights_dir: Path | None, device: str
) -> tuple[ModelSpec, Path, Embedder]:
    """The registry entry, file and loaded float32 embedder of ``config.base``."""
    from core.runtime import resolve_device

    spec = MODELS.get(config.base)
    if spec is None or spec.stage != "embedder" or spec.format == "head":
        raise TrainError(f"--base must be a backbone embedder, not {config.base!r}")
    base_path = resolve(spec.files[0], weights_dir)
    # float32 on every device: it may be fine-tuned
    base = Embedder.from_weights(
        spec.name, base_path, resolve_device(device), EmbedderConfig(resize="pad", half=False)
    )
    return spec, base_path, base


def _read_set(dataset: Path, cfg: TrainConfig) -> tuple[TrainSet, frozenset[str], frozenset[Path]]:
    """The set, its held-out identities and its benchmark-sample photos; notes on stderr."""
    try:
        found = scan_set(dataset)
    except BadInput as exc:
        raise TrainError(str(exc)) from None
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)
    if len(found.items) < 2:
        raise TrainError(f"{dataset} has {len(found.items)} usable item(s); need >= 2")
    held_out = holdout_identities(found.items, cfg.holdout_identities, cfg.holdout_seed)
    bench = benchmark_photos(found.root, cfg.exclude_benchmark_sample)
    return found, held_out, bench


def _training_classes(labels: np.ndarray, train_mask: np.ndarray, n_items: int) -> np.ndarray:
    """ArcFace classes: item index -> index among the training identities (-1: not trained
    on); notes on stderr how many of them have a single photo."""
    train_items = sorted(set(labels[train_mask].tolist()))
    counts = np.bincount(labels[train_mask], minlength=n_items)
    single = int((counts[train_items] == 1).sum())
    if single:
        print(
            f"note: {single} of {len(train_items)} training identities have one photo: they "
            "are trained from its augmented views and serve as negatives for the others",
            file=sys.stderr,
        )
    remap = np.full(n_items, -1, np.int64)
    remap[train_items] = np.arange(len(train_items))
    return remap


def train(
    dataset: Path,
    out: Path,
    config: TrainConfig | None = None,
    *,
    weights_dir: Path | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    command: str = "",
) -> TrainResult:
    """Train a head (and, with ``finetune_epochs``, the backbone) on a set and write it.

    Progress, notes and the base backbone's recall go to stderr as the run goes.

    Args:
        dataset: a set in the data layout (``catalog/``, ``queries/``).
        out: the head file to write.
        config: the run's knobs; `TrainConfig()` by default.
        weights_dir: folder with the base weights (searched first, see `weights.resolve`).
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: reuse extracted features here (frozen-backbone runs).
        command: how the run was started, recorded in the head file (default: this call).

    Returns:
        A `TrainResult`.

    Raises:
        TrainError: a set it cannot train or validate on, or a base that is not a backbone.
        ModelUnavailable: the base weights are missing or corrupt.
    """
    cfg = config or TrainConfig()
    torch.manual_seed(cfg.seed)
    found, held_out, bench = _read_set(dataset, cfg)
    spec, base_path, base = _base_embedder(cfg, weights_dir, device)

    photos = list(found.photos)
    item_index = {item: i for i, item in enumerate(found.items)}
    _split(photos, item_index, held_out, bench, dataset)  # fail fast, before features
    if cfg.finetune_epochs:  # photos in memory, augmented afresh each epoch
        images, kept = load_photos([p.path for p in photos], 2 * base.config.input_size)
        clean = embed_images(base.model, base, images)  # (N, F) base features, clean views
    else:  # base features of a few augmented views, computed once
        feats, kept = cached_features(base, photos, cfg, cache_dir)
        clean = feats[:, 0]
    photos = [photos[i] for i in kept]
    if not photos:
        raise TrainError(f"no readable photos in {dataset}")
    labels, is_catalog, train_mask, splits = _split(photos, item_index, held_out, bench, dataset)
    remap = _training_classes(labels, train_mask, len(found.items))
    baseline = _recalls(clean, labels, is_catalog, splits)
    for name in splits:
        print(
            f"baseline ({cfg.base}) {name}: recall@1={baseline[f'{name}_recall@1']:.3f} "
            f"recall@5={baseline[f'{name}_recall@5']:.3f} queries={int(splits[name].sum())}",
            file=sys.stderr,
        )

    head = ProjectionHead(clean.shape[-1], cfg.dim).to(base.device)
    n_classes = int(remap.max()) + 1
    loss_fn = SubCenterArcFace(cfg.dim, n_classes, cfg.subcenters, cfg.scale, cfg.margin)
    loss_fn.to(base.device)
    start = time.perf_counter()
    if cfg.finetune_epochs:
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
                epochs=cfg.finetune_epochs,
                warmup=cfg.warmup_epochs,
                head_lr=cfg.lr,
                backbone_lr=cfg.backbone_lr,
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
        f"{Path(dataset).name}: {int(train_mask.sum())} photos of {n_classes} "
        f"identities (held out: {len(held_out)} identities, "
        f"{int(splits['benchmark'].sum()) if 'benchmark' in splits else 0} benchmark-sample "
        "query photos; _none never used)"
    )
    checkpoint = HeadCheckpoint(
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
            if cfg.finetune_epochs
            else None
        ),
        trained_on=trained_on,
        command=command or f"embedding.train.train({str(dataset)!r}, {cfg})",
        val_recall=results,
    )
    save_head(out, checkpoint)
    return TrainResult(Path(out), checkpoint, results, time.perf_counter() - start)


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
    p.add_argument("--base", default=d.base, help="backbone embedder (registry name)")
    p.add_argument("--out", type=Path, required=True, help="head file to write")
    p.add_argument(
        "--holdout-identities",
        type=float,
        default=d.holdout_identities,
        help="fraction of items (seeded) never trained on; their queries validate",
    )
    p.add_argument(
        "--exclude-benchmark-sample",
        type=int,
        default=d.exclude_benchmark_sample,
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
        default=d.finetune_epochs,
        help="also fine-tune the backbone for N epochs on photos augmented afresh each epoch "
        "(0: head only, on cached features; the head learns from --warmup-epochs first)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=d.warmup_epochs,
        help="with --finetune-epochs: head-only epochs",
    )
    p.add_argument(
        "--backbone-lr",
        type=float,
        default=d.backbone_lr,
        help="with --finetune-epochs: backbone lr",
    )
    p.add_argument(
        "--holdout-seed",
        type=int,
        default=d.holdout_seed,
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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` of parsed flags."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Exit code 0 on success, 2 on a set it cannot train or validate on (`core.cli`)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m embedding.train " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    try:
        result = train(
            args.dataset,
            args.out,
            config_from_args(args),
            weights_dir=args.weights_dir,
            device=args.device,
            cache_dir=args.cache_dir,
            command=command,
        )
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.USAGE
    out = result.out
    print(
        f"wrote {out} ({out.stat().st_size} bytes, sha256 {sha256_of(out)}) in "
        f"{result.seconds:.1f} s of training",
        file=sys.stderr,
    )
    print(" ".join(f"{k}={v:.3f}" for k, v in result.val_recall.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
