"""The ``analytics`` job kind: a catalog's stored embeddings -> the run's files.

Submitted by ``POST /v1/catalogs/<id>/analytics`` (api/routes/analytics.py); runs on the job
consumer (jobs/). Its files: clusters.csv, duplicates.csv, confused_items.csv, metrics.json,
map.png, map.html, sheets/cluster_<c>.jpg, sheets/outliers.jpg.
"""

from __future__ import annotations

from typing import Any

from jobs import JobContext, job_kind

STEPS = (
    "load",
    "scale",
    "pca",
    "cluster",
    "pairs",
    "outliers",
    "map",
    "metrics",
    "quality",
    "write",
)
OPTIONS = ("k", "choose_by", "method", "outlier_z", "duplicate_similarity", "map_sample", "seed")


@job_kind("analytics")
def analytics_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Run the analytics of ``params["catalog_id"]`` with the `OPTIONS` given.

    Returns:
        The run's metrics (images, clusters, outliers, ch, db, silhouette...).
    """
    from analytics.outputs.write import write_outputs
    from analytics.pipeline import AnalyticsConfig, run
    from analytics.quality import add_quality
    from analytics.sources import catalog_descriptors

    total = len(STEPS)

    def report(step: str, done: int, steps_total: int) -> None:
        if step in STEPS:
            ctx.progress(STEPS.index(step), total, step)

    ctx.progress(0, total, "load")
    data, read = catalog_descriptors(ctx.store, str(params["catalog_id"]))
    options = {name: params[name] for name in OPTIONS if name in params}
    if not options.get("k"):
        options.pop("k", None)
    config = AnalyticsConfig(**options)
    result = run(data, config, None, report)
    ctx.progress(STEPS.index("quality"), total, "quality")
    add_quality(result, read)
    ctx.progress(STEPS.index("write"), total, "write")
    write_outputs(result, ctx.files_dir, read)
    return {k: v for k, v in result.metrics.items() if k != "k_scores"}
