"""The ``discovery`` job kind (``SIGHTING_JOB_MODULES`` lists ``discovery.job``).

Submitted by ``POST /v1/catalogs/<id>/discovery`` (params ``catalog_id``, optional
``trap_job`` and ``min_score``); runs `discovery.run.run_discovery` on the consumer with its
shared pipeline. Re-running it (a dead worker's attempt) replaces the open proposals again,
so nothing is proposed twice.
"""

from __future__ import annotations

from typing import Any

from jobs import JobContext, job_kind

KIND = "discovery"


@job_kind(KIND)
def discovery_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Group the catalog's unknown photos into proposals.

    Returns:
        photos, clusters, groups, proposals (their ids), pairs_checked, pairs_confirmed,
        threshold, replaced.
    """
    from discovery.group import GroupConfig
    from discovery.run import DiscoveryRequest, run_discovery
    from matching.engine import shared_pipeline

    settings = ctx.settings
    request = DiscoveryRequest(
        catalog_id=str(params["catalog_id"]),
        owner=ctx.owner,
        job_id=ctx.job_id,
        trap_job=params.get("trap_job") or None,
        max_score=float(params.get("max_score", settings.discovery_max_score)),
        min_score=params.get("min_score"),
        max_photos=settings.discovery_max_photos,
    )
    config = GroupConfig(
        neighbours=settings.discovery_neighbours,
        link_similarity=settings.discovery_link_similarity,
        max_group=settings.discovery_max_group,
    )

    def progress(stage: str, done: int, total: int) -> None:
        ctx.progress(done, total, stage)

    ctx.progress(0, 0, "loading models")
    outcome = run_discovery(ctx.store, shared_pipeline(settings), request, config, progress)
    g = outcome.grouping
    return {
        "photos": outcome.photos,
        "clusters": g.clusters,
        "groups": len(g.groups),
        "proposals": [p.proposal_id for p in outcome.proposals],
        "pairs_checked": g.pairs_checked,
        "pairs_confirmed": g.pairs_confirmed,
        "threshold": g.threshold,
        "replaced": outcome.replaced,
    }
