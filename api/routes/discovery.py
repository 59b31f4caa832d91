"""Discovery of new individuals: start a run, list its proposals, accept, split or reject one.

Short adapters of `service.discovery`; the grouping runs as a job on the task queue
(``discovery``, `discovery.job`), never in the request.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from api.auth import caller
from api.schemas import (
    SPLIT_BODY,
    AcceptedOut,
    AcceptIn,
    DiscoveryIn,
    ProposalList,
    ProposalListIn,
    ProposalOut,
    SplitIn,
    SplitOut,
    binary,
    v1_doc,
)
from api.serialise import accepted_json, job_json, proposal_json, proposals_json, split_json
from api.state import state
from service import discovery

bp = APIBlueprint(
    "discovery", __name__, tag="Discovery", url_prefix="/v1/catalogs/<catalog_id>/discovery"
)
_DECIDED = "the proposal is not open (accepted or rejected already)"


@bp.post("")
@bp.input(DiscoveryIn, arg_name="body", location="json")
@v1_doc(
    bp,
    "start_discovery",
    {400: "the body is not JSON", 422: "a bad field, or a trap_job that names no batch"},
    responses={202: {"description": "The job, queued (Location: /v1/jobs/<id>)"}},
)
def start_discovery(catalog_id: str, body: dict):
    """Group the catalog's photos nobody recognised into proposed new individuals.

    The photos are its sightings reviewed ``none`` or unreviewed with a best score below
    ``max_score`` (or, with ``trap_job``, that camera-trap batch's animals that matched no
    known individual). Answers 202 with the job; when it is done, its proposals replace the
    catalog's open ones (``GET .../discovery/proposals``)."""
    record = discovery.start_discovery(state(), caller(), catalog_id, body)
    return job_json(record), 202, {"Location": f"/v1/jobs/{record.job_id}"}


@bp.get("/proposals")
@bp.input(ProposalListIn, location="query", arg_name="query")
@bp.output(ProposalList)
@v1_doc(bp, "list_proposals", {})
def list_proposals(catalog_id: str, query: dict):
    """The catalog's proposals, oldest first (``state``: open, accepted, rejected): each a
    group of photos (with their crops' URLs), the verified pairs joining them, its score."""
    found = discovery.list_proposals(state(), caller(), catalog_id, query.get("state"))
    return proposals_json(found)


@bp.get("/proposals/<proposal_id>")
@bp.output(ProposalOut)
@v1_doc(bp, "get_proposal", {})
def get_proposal(catalog_id: str, proposal_id: str):
    """One proposal."""
    return proposal_json(discovery.get_proposal(state(), caller(), catalog_id, proposal_id))


@bp.get("/proposals/<proposal_id>/members/<int:index>/crop")
@v1_doc(
    bp,
    "get_proposal_crop",
    {},
    responses={200: {"description": "The crop (JPEG)", "content": {"image/jpeg": binary()}}},
)
def get_proposal_crop(catalog_id: str, proposal_id: str, index: int):
    """The crop of the proposal's member ``index`` (0-based, in the order listed)."""
    data = discovery.member_crop(state(), caller(), catalog_id, proposal_id, index)
    return Response(data, mimetype="image/jpeg")


@bp.post("/proposals/<proposal_id>/accept")
@bp.input(AcceptIn, arg_name="body", location="json")
@bp.output(AcceptedOut)
@v1_doc(bp, "accept_proposal", {400: "the body is not JSON", 409: f"{_DECIDED}, or item_id exists"})
def accept_proposal(catalog_id: str, proposal_id: str, body: dict):
    """Accept the group as a new item: it is created from its first photo (the review's
    ``new_item`` verdict; ``item_id`` and ``metadata`` optional) and every other photo
    becomes a reference image of it (its sighting reviewed ``same``)."""
    outcome = discovery.accept(
        state(),
        caller(),
        catalog_id,
        proposal_id,
        body.get("item_id") or None,
        body.get("metadata"),
    )
    return accepted_json(outcome)


@bp.post("/proposals/<proposal_id>/split")
@bp.input(SplitIn, arg_name="body", location="json")
@bp.output(SplitOut, status_code=201)
@v1_doc(bp, "split_proposal", {400: "the body is not JSON", 409: _DECIDED}, body=SPLIT_BODY)
def split_proposal(catalog_id: str, proposal_id: str, body: dict):
    """Move the ``members`` named (their refs) into a new open proposal; 201 with both."""
    rest, new = discovery.split(state(), caller(), catalog_id, proposal_id, body["members"])
    return split_json(rest, new), 201


@bp.post("/proposals/<proposal_id>/reject")
@bp.output(ProposalOut)
@v1_doc(bp, "reject_proposal", {409: _DECIDED})
def reject_proposal(catalog_id: str, proposal_id: str):
    """Reject the group: not one new individual (not proposed again as it is)."""
    return proposal_json(discovery.reject(state(), caller(), catalog_id, proposal_id))
