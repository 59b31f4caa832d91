"""Match a watch's new images against the other side and keep one alert per item pair.

Each image is matched with the normal pipeline (`matching.pipeline.Pipeline.match_frames` on
the whole photo and its objects, ranked items, calibrated ``score`` and ``verified``), as the
search endpoint does; the ranked list is cut at the watch's ``min_score`` because the watch
asked for it. An image of the source catalog (found dogs) is searched in the watched catalog
(lost dogs); an image added later to the watched catalog (a newly lost dog) is searched in the
source catalog. With both sides the same catalog, an item is never paired with itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from catalog.cache import CatalogCache
from catalog.manifest import Manifest
from catalog.repository import CatalogRepository
from core.errors import Conflict, NotFound
from core.images import decode_image
from matching.pipeline import Pipeline, PipelineConfig
from matching.result import Match
from watches.model import Alert, Watch, alert_id_of, now, with_changes
from watches.store import WatchStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairHit:
    """One match of a watch at or above its score: the pair and its best image pair."""

    watched_item: str
    watched_image: str
    source_item: str
    source_image: str
    match: Match


@dataclass(frozen=True)
class Outcome:
    """What matching some images did: images matched, alerts created, alerts that exist."""

    images: int
    new_alerts: list[Alert]
    touched: list[Alert]


def _first_added(manifest: Manifest, item_id: str) -> str:
    item = manifest.items[item_id]
    return min((r.added_at for r in item.images.values()), default="")


class WatchMatcher:
    """Matches images for watches with one pipeline and a cache of catalog views."""

    def __init__(
        self, repository: CatalogRepository, pipeline: Pipeline, watches: WatchStore, top_k: int
    ) -> None:
        self.repository = repository
        self.pipeline = pipeline
        self.watches = watches
        self.top_k = top_k
        self.views = CatalogCache(
            repository, lambda kind: pipeline.embedder_for(kind).dim, sync_interval_s=0.0
        )

    def _check(self, manifest: Manifest) -> None:
        fingerprint = self.pipeline.embedder_for(manifest.kind).fingerprint
        if manifest.indexed_with_other(fingerprint):
            raise Conflict(
                f"catalog {manifest.catalog_id!r} was indexed with another embedder: re-index it"
            )

    def _search(self, catalog_id: str, pixels, exclude: str | None) -> list[Match]:
        manifest, view = self.views.get(catalog_id, check=self._check)
        config = PipelineConfig(top_k=self.top_k + (1 if exclude else 0), whole_frame=True)
        result = self.pipeline.match_frames([pixels], view, config)[0]
        ranked = result.ranked_items(config.top_k)
        return [m for m in ranked if m.item_id != exclude][: self.top_k]

    def hits(self, watch: Watch, catalog_id: str, image_id: str) -> list[PairHit]:
        """The pairs one image of ``catalog_id`` makes for ``watch`` (score >= min_score).

        Raises:
            NotFound: the image or a catalog is gone.
        """
        manifest = self.repository.get_manifest(catalog_id)
        found = manifest.find_image(image_id)
        if found is None:
            raise NotFound(f"image {image_id!r} is no longer in catalog {catalog_id!r}")
        item, _record = found
        same = watch.watched_catalog == watch.source_catalog
        from_source = catalog_id == watch.source_catalog
        if from_source and not watch.filters.passes(
            item.metadata, _first_added(manifest, item.item_id)
        ):
            return []
        _, data = self.repository.get_image(catalog_id, image_id)
        pixels = decode_image(data)
        other = watch.watched_catalog if from_source else watch.source_catalog
        matches = self._search(other, pixels, item.item_id if same else None)
        out = []
        other_manifest = None
        for m in matches:
            if m.score < watch.min_score:
                continue
            if from_source:
                out.append(PairHit(m.item_id, m.image_id, item.item_id, image_id, m))
                continue
            other_manifest = other_manifest or self.repository.get_manifest(other)
            source_item = other_manifest.items.get(m.item_id)
            if source_item is None or not watch.filters.passes(
                source_item.metadata, _first_added(other_manifest, m.item_id)
            ):
                continue
            out.append(PairHit(item.item_id, image_id, m.item_id, m.image_id, m))
        return out

    def match_images(
        self,
        watch: Watch,
        catalog_id: str,
        image_ids: Iterable[str],
        progress: Callable[[int, int], None] = lambda d, t: None,
    ) -> Outcome:
        """Match images of one side for ``watch`` and record its alerts (one per pair)."""
        ids = list(image_ids)
        new, touched = [], []
        for done, image_id in enumerate(ids):
            progress(done, len(ids))
            try:
                hits = self.hits(watch, catalog_id, image_id)
            except NotFound as exc:
                log.info("watch %s: %s", watch.watch_id, exc.message)
                continue
            for hit in hits:
                alert, created = self.record(watch, hit)
                (new if created else touched).append(alert)
        progress(len(ids), len(ids))
        return Outcome(len(ids), new, touched)

    def record(self, watch: Watch, hit: PairHit) -> tuple[Alert, bool]:
        """Create the pair's alert, or keep the better image pair in the existing one."""
        m = hit.match
        alert = Alert(
            alert_id=alert_id_of(watch.watch_id, hit.watched_item, hit.source_item),
            watch_id=watch.watch_id,
            watched_item=hit.watched_item,
            watched_image=hit.watched_image,
            source_item=hit.source_item,
            source_image=hit.source_image,
            score=m.score,
            verified=m.verified,
            similarity=m.similarity,
            inliers=m.inliers,
            created_at=now(),
        )
        if not watch.webhook_url:
            alert = with_changes(alert, delivery=with_changes(alert.delivery, status="none"))
        if self.watches.add_alert(alert):
            return alert, True

        def better(old: Alert) -> Alert | None:
            if (m.score, m.similarity) <= (old.score, old.similarity):
                return None
            return with_changes(
                old,
                watched_image=hit.watched_image,
                source_image=hit.source_image,
                score=m.score,
                verified=m.verified or old.verified,
                similarity=m.similarity,
                inliers=m.inliers,
            )

        updated = self.watches.update_alert(watch.watch_id, alert.alert_id, better)
        return updated or self.watches.get_alert(watch.watch_id, alert.alert_id), False
