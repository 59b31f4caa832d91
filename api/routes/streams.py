"""Live video: frames of a stream with tracking, and whole video files as ndjson.

A stream is (tenant, catalog, stream id) and lives in the worker that received its frames
(see `tracking.streams`): send a stream's frames over one keep-alive connection. Frames that
reach another worker open an independent stream there (new track ids, verification
repeated), which is correct but slower.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from apiflask import APIBlueprint
from flask import Response, request, stream_with_context

from api.auth import caller
from api.inputs import read_images
from api.metrics import observe_stages
from api.options import options
from api.schemas import (
    MATCH_ERRORS,
    ImageForm,
    ImageJSON,
    StoredVideo,
    StreamFrame,
    StreamHeaders,
    StreamList,
    StreamOptionsIn,
    StreamPath,
    VideoLine,
    VideoOptionsIn,
    binary,
    image_body,
    v1_doc,
)
from api.serialise import stream_frame_json, streams_json
from api.state import state
from core.errors import BadInput, UnsupportedMedia
from matching.pipeline import Timer
from matching.report import video_lines, video_summary
from service import streams
from service.options import StreamOptions, VideoOptions

bp = APIBlueprint("streams", __name__, tag="Streams")

CLIENT_HEADER = "X-Stream-Client"
STREAM_LINKS = {
    "close_stream": {
        "operationId": "close_stream",
        "parameters": {
            "catalog_id": "$request.path.catalog_id",
            "stream_id": "$request.path.stream_id",
        },
    }
}


@bp.post("/v1/catalogs/<catalog_id>/streams/<stream_id>/frames")
@bp.input(StreamPath, location="path", arg_name="path")
@options(bp, StreamOptionsIn)
@bp.input(StreamHeaders, location="headers", arg_name="headers")
@bp.output(StreamFrame, description="The frame's tracked detections", links=STREAM_LINKS)
@v1_doc(
    bp,
    "stream_frame",
    MATCH_ERRORS
    | {409: "frame index not forward, another X-Stream-Client, or another embedder's catalog"},
    body=image_body(ImageForm, ImageJSON, StreamOptionsIn),
)
def stream_frame(catalog_id: str, stream_id: str, path: dict, opts: StreamOptions, headers: dict):
    """One frame of a live stream: detections with track ids and (cached) matches.

    Body: one frame, as for detect (raw ``image/jpeg``/``image/png``, multipart ``image``, or
    JSON base64). Query: ``frame_index`` (increasing; default: the last one + 1), ``top_k``,
    ``classes``, ``verify``, ``labels`` (a label set's id: each track is labelled on the
    frame it is first seen and keeps its ``labels``). Header ``X-Stream-Client`` (optional)
    names the sender. The stream opens on its first frame. A frame index that does not move
    forward, or another ``X-Stream-Client``, is answered 409 (two senders on one stream id).
    A corrupt frame is answered 422 and the stream stays open. Answers ``{"stream_id",
    "frame_index", "detections": [{"track_id", "box", "class", "confidence", "matches",
    "verified_now"}], "timings"}``; the whole frame is not matched on streams.
    """
    timer = Timer()
    with timer.stage("decode"):
        image = read_images(state().settings, field="image", many=False)[0]
    client = headers.get("client") or None
    answer = streams.stream_frame(
        state(), caller(), catalog_id, stream_id, image.pixels, opts, client, timer
    )
    observe_stages(answer.result.timings)
    return stream_frame_json(answer)


@bp.delete("/v1/catalogs/<catalog_id>/streams/<stream_id>")
@bp.input(StreamPath, location="path", arg_name="path")
@v1_doc(bp, "close_stream", {}, responses={204: {"description": "Closed"}})
def close_stream(catalog_id: str, stream_id: str, path: dict):
    """Close a stream of this worker and forget its tracks. 204; 404 if it is not open."""
    streams.close_stream(state(), caller(), catalog_id, stream_id)
    return "", 204


@bp.get("/v1/streams")
@bp.output(StreamList)
@v1_doc(bp, "list_streams", {})
def list_streams():
    """The caller's open streams on the worker that answers (see ``X-Sighting-Worker``)."""
    return streams_json(streams.list_streams(state(), caller()))


def _video_file() -> Path:
    """The request's video in a temp file, uploaded or named in the store (the caller deletes
    it): ``application/json`` ``{"key": "videos/..."}`` names a stored video."""
    if (request.mimetype or "").lower() == "application/json":
        body = request.get_json(silent=True)
        key = body.get("key") if isinstance(body, dict) else None
        return streams.copy_stored_video(state(), caller(), key)
    return _save_upload()


def _save_upload() -> Path:
    """The request's video body in a temp file; returns its path (the caller deletes it)."""
    ctype = (request.mimetype or "").lower()
    if ctype.startswith("multipart/form-data"):
        upload = request.files.get("video")
        if upload is None:
            raise BadInput("multipart body has no file in field 'video'")
        data = upload.read()
    elif ctype.startswith(("video/", "application/octet-stream")):
        data = request.get_data(cache=False)
    else:
        raise UnsupportedMedia(
            f"content type {ctype or 'none'!r} is not accepted: send video/mp4, "
            "multipart/form-data with field 'video', or application/json naming a stored video"
        )
    if not data:
        raise BadInput("empty body: send a video (video/mp4)")
    fd, path = tempfile.mkstemp(suffix=".video")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(path)


@bp.post("/v1/catalogs/<catalog_id>/videos")
@options(bp, VideoOptionsIn)
@v1_doc(
    bp,
    "process_video",
    MATCH_ERRORS
    | {
        403: "naming a stored video needs an admin key",
        413: "video over the body or stored-video size limit",
        415: "not a video",
        422: "a file OpenCV cannot decode, a bad key or option",
    },
    body={
        "required": True,
        "content": {"video/mp4": binary(), "application/json": {"schema": StoredVideo}},
    },
    responses={
        200: {
            "description": "One JSON line per detection per frame, then a summary line",
            "content": {"application/x-ndjson": {"schema": VideoLine}},
        }
    },
)
def process_video(catalog_id: str, opts: VideoOptions):
    """Match a whole video file with tracking; answers ``application/x-ndjson``.

    Body: ``video/mp4`` (or multipart field ``video``), within the body size limit; or
    ``application/json`` ``{"key": "videos/<path>"}`` naming a video in the catalog store (no
    size limit but ``SIGHTING_MAX_VIDEO_BYTES``; admin key when keys are configured). Query:
    ``top_k``, ``classes``, ``verify``, ``stride`` (every n-th frame, default 1), ``keep``
    (one sighting per track, its best view), ``annotate`` (a job draws the answer on the video:
    ``annotated.webm``, named by the summary's ``annotation_job``). Lines: one per detection
    per frame, ``{"frame",
    "time", "track", "box", "class", "item", "score", "verified", "verified_now"}``, then
    ``{"summary": {"frames", "fps", "verify_calls", "verify_per_frame", "seconds",
    "stages_ms"}}`` (with keep also ``sighting_ids``). A file OpenCV cannot decode is 422.
    The detector runs at ``SIGHTING_VIDEO_IMGSZ`` for speed.
    """
    run = streams.process_video(state(), caller(), catalog_id, _video_file, opts)

    def lines():
        for index, result in run.records:
            for line in video_lines(result, index, run.fps):
                yield json.dumps(line) + "\n"
        stats = run.stats
        summary = video_summary(
            frames=stats.frames,
            seconds=stats.seconds,
            verify_calls=stats.verify_calls,
            stages=stats.stages,
            video_fps=run.fps,
            sighting_ids=run.sighting_ids,
        )
        if run.annotation_job is not None:
            summary["summary"]["annotation_job"] = run.annotation_job
        yield json.dumps(summary) + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")
