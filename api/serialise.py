"""The one serialiser of each service result: typed results in, the API's JSON out.

Matching results use `matching.report` (shared with the benchmarks and the stream client's
records) and labels `labels.result.result_to_dict`; the rest is here. Routes call these and
nothing else to shape an answer.
"""

from __future__ import annotations

from catalog.manifest import Item, Manifest
from discovery.decide import Accepted
from discovery.model import Proposal
from jobs import JobRecord
from labels.result import LabelResult, result_to_dict
from matching.report import (
    frame_to_dict,
    ranking_to_dict,
    search_to_dict,
    stream_frame_to_dict,
    timings_to_dict,
)
from service.analytics import ImageQuality
from service.catalogs import CatalogSummary
from service.items import Added
from service.matching import Detected, Explained, Searched
from service.streams import OpenStream, StreamAnswer
from sightings.duplicates import duplicate_to_dict
from sightings.model import Sighting, SightingPage
from sightings.review import ReviewOutcome
from watches.model import Alert, Watch


def catalog_json(summary: CatalogSummary) -> dict:
    """A catalog (no item list); with its ``calibration`` when it was read."""
    m = summary.manifest
    body = {
        "id": m.catalog_id,
        "name": m.name,
        "kind": m.kind,
        "version": m.version,
        "items": len(m.items),
        "images": m.image_count,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "embedder": m.embedder_fingerprint,
        "needs_reindex": summary.needs_reindex,
    }
    if summary.calibration is not None:
        body["calibration"] = summary.calibration
    return body


def item_json(item: Item) -> dict:
    """An item with its metadata and images."""
    return {
        "item_id": item.item_id,
        "metadata": item.metadata,
        "images": [
            {
                "image_id": r.image_id,
                "width": r.width,
                "height": r.height,
                "content_type": r.content_type,
                "added_at": r.added_at,
            }
            for r in item.images.values()
        ],
    }


def items_json(manifest: Manifest) -> dict:
    """Every item of a catalog, and its version."""
    return {"items": [item_json(i) for i in manifest.items.values()], "version": manifest.version}


def added_json(added: Added) -> dict:
    return {
        "item_id": added.item_id,
        "image_ids": added.image_ids,
        "version": added.version,
        "warnings": added.warnings,
        "possible_duplicates": [duplicate_to_dict(d) for d in added.possible_duplicates],
    }


def _with_labels(body: dict, labels: list[LabelResult | None] | None) -> dict:
    """Each detection's ``labels`` (only when labels were asked for)."""
    if labels is not None:
        for det, lab in zip(body["detections"], labels, strict=True):
            det["labels"] = None if lab is None else result_to_dict(lab)
    return body


def detected_json(d: Detected) -> dict:
    body = _with_labels(frame_to_dict(d.result), d.labels)
    body["timings"] = timings_to_dict(d.result.timings)
    body["ranking"] = ranking_to_dict(d.result.ranking)
    if d.sighting_ids is not None:
        body["sighting_ids"] = d.sighting_ids
    return body | {"catalog_version": d.catalog_version, "calibration": d.calibration}


def searched_json(r: Searched) -> dict:
    body = search_to_dict(r.matches, r.timings, r.ranking)
    if r.sighting_ids is not None:
        body["sighting_ids"] = r.sighting_ids
    return body | {"catalog_version": r.catalog_version, "calibration": r.calibration}


def explained_json(e: Explained) -> dict:
    return e.explanation.numbers | {"catalog_version": e.catalog_version}


def stream_frame_json(a: StreamAnswer) -> dict:
    body = _with_labels(stream_frame_to_dict(a.result, a.stream_id, a.frame_index), a.labels)
    body["timings"] = timings_to_dict(a.result.timings)
    if a.sighting_ids is not None:
        body["sighting_ids"] = a.sighting_ids
    return body | {"catalog_version": a.catalog_version}


def streams_json(streams: list[OpenStream]) -> dict:
    return {"streams": [vars(st).copy() for st in streams]}


def job_json(record: JobRecord) -> dict:
    """A job as the API answers it, with the URLs of its result files."""
    body = record.to_public()
    body["file_urls"] = {name: f"/v1/jobs/{record.job_id}/files/{name}" for name in record.files}
    return body


def quality_json(images: list[ImageQuality]) -> dict:
    return {
        "images": [
            {
                "item_id": q.item_id,
                "image_id": q.image_id,
                "warnings": q.warnings,
                "measures": q.measures,
            }
            for q in images
        ],
        "flagged": sum(1 for q in images if q.warnings),
    }


def sighting_json(s: Sighting) -> dict:
    """A sighting as the API's JSON: its stored form (less store keys and tenant) plus the URLs
    of its crop, its photo and each candidate's catalog image."""
    body = s.to_dict()
    for key in ("tenant", "crop_key", "photo_key", "embedder"):
        body.pop(key, None)
    base = f"/v1/catalogs/{s.catalog_id}"
    body["crop_url"] = f"{base}/sightings/{s.sighting_id}/crop"
    body["photo_url"] = f"{base}/sightings/{s.sighting_id}/photo" if s.photo_key else None
    for cand in body["candidates"]:
        cand["image_url"] = f"{base}/items/{cand['item_id']}/images/{cand['image_id']}"
    return body


def sighting_page_json(page: SightingPage) -> dict:
    return {
        "sightings": [sighting_json(s) for s in page.sightings],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "counts": page.counts,
    }


def reviewed_json(outcome: ReviewOutcome) -> dict:
    return {
        "sighting": sighting_json(outcome.sighting),
        "created_item": outcome.created_item,
        "reference_image_id": outcome.reference_image_id,
        "removed_image_id": outcome.removed_image_id,
        "catalog_version": outcome.catalog_version,
    }


def watch_json(watch: Watch, *, with_secret: bool = False) -> dict:
    """A watch as the API answers it (its secret only when just created)."""
    return watch.to_public(with_secret=with_secret)


def watches_json(watches: list[Watch]) -> dict:
    """A list of watches."""
    return {"watches": [watch_json(w) for w in watches]}


def alert_json(watch: Watch, alert: Alert) -> dict:
    """An alert as the API lists it (the webhook sends the same, without its delivery log)."""
    return alert.to_public(watch)


def alerts_json(watch: Watch, alerts: list[Alert]) -> dict:
    """A watch's alerts."""
    return {"alerts": [alert_json(watch, a) for a in alerts]}


def proposal_json(p: Proposal) -> dict:
    """A discovery proposal: its stored form (less store keys and tenant), each member's crop
    URL (and its sighting's URL for a sighting)."""
    body = p.to_dict()
    body["id"] = body.pop("proposal_id")
    body.pop("tenant", None)
    base = f"/v1/catalogs/{p.catalog_id}"
    for index, member in enumerate(body["members"]):
        member.pop("crop_key", None)
        member["crop_url"] = f"{base}/discovery/proposals/{p.proposal_id}/members/{index}/crop"
        member["sighting_url"] = (
            f"{base}/sightings/{member['ref']}" if member["source"] == "sighting" else None
        )
    return body


def proposals_json(proposals: list[Proposal]) -> dict:
    """A catalog's proposals."""
    return {"proposals": [proposal_json(p) for p in proposals]}


def accepted_json(outcome: Accepted) -> dict:
    """What accepting a proposal did."""
    return {
        "proposal": proposal_json(outcome.proposal),
        "item_id": outcome.item_id,
        "images": outcome.images,
        "skipped": outcome.skipped,
        "catalog_version": outcome.catalog_version,
    }


def split_json(rest: Proposal, new: Proposal) -> dict:
    """The proposal split and the one split off."""
    return {"proposal": proposal_json(rest), "split_off": proposal_json(new)}
