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
import time

from apiflask import APIBlueprint
from flask import Response, current_app, request, stream_with_context

from api.auth import caller
from api.inputs import classes_option, option, read_images
from api.labels import add_labels, frame_labels, labels_option
from api.metrics import observe_stages
from api.routes.matching import MATCH_ERRORS, catalog_for_matching
from api.schemas import (
    ImageForm,
    ImageJSON,
    StoredVideo,
    StreamFrame,
    StreamHeaders,
    StreamList,
    StreamPath,
    StreamQuery,
    VideoLine,
    VideoQuery,
    binary,
    image_body,
    v1_doc,
)
from api.state import state
from catalog.videos import VIDEO_PREFIX, check_video_key
from core.errors import BadInput, Forbidden, UnsupportedMedia
from core.settings import Settings
from matching.pipeline import Pipeline, PipelineConfig, Timer
from matching.report import stream_frame_to_dict, timings_to_dict, video_lines, video_summary
from tracking.streams import StreamRegistry, check_stream_id
from tracking.tracker import TrackedMatcher, TrackerConfig
from tracking.video import VideoStats, open_video, run_video

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


def make_registry(settings: Settings, pipeline: Pipeline) -> StreamRegistry:
    """The worker's stream registry (kept in ``app.extensions["streams"]``)."""
    config = TrackerConfig.from_settings(settings, settings.stream_imgsz)
    return StreamRegistry(
        lambda: TrackedMatcher(pipeline, config),
        idle_s=settings.stream_idle_s,
        max_streams=settings.max_streams,
    )


def registry() -> StreamRegistry:
    """The current app's `StreamRegistry`."""
    return current_app.extensions["streams"]


def _config(settings: Settings) -> PipelineConfig:
    return PipelineConfig.from_settings(
        settings,
        top_k=option("top_k", int, settings.top_k, lo=1, hi=settings.max_top_k),
        verify=option("verify", bool, True),
        classes=classes_option(),
        whole_frame=False,
    )


@bp.post("/v1/catalogs/<catalog_id>/streams/<stream_id>/frames")
@bp.input(StreamPath, location="path", arg_name="path")
@bp.input(StreamQuery, location="query", arg_name="query")
@bp.input(StreamHeaders, location="headers", arg_name="headers")
@bp.output(StreamFrame, description="The frame's tracked detections", links=STREAM_LINKS)
@v1_doc(
    bp,
    "stream_frame",
    MATCH_ERRORS
    | {409: "frame index not forward, another X-Stream-Client, or another embedder's catalog"},
    body=image_body(ImageForm, ImageJSON),
)
def stream_frame(catalog_id: str, stream_id: str, path: dict, query: dict, headers: dict):
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
    # path, query and headers: validated by their schemas; `option` reads the options
    s = state()
    check_stream_id(stream_id)
    timer = Timer()
    with timer.stage("decode"):
        image = read_images(s.settings, field="image", many=False)[0]
    frame_index = option("frame_index", int, None, lo=0)
    config = _config(s.settings)
    label_set = labels_option()
    view = catalog_for_matching(catalog_id)
    client = request.headers.get(CLIENT_HEADER) or None
    stream = registry().open((caller().tenant, catalog_id, stream_id), client)
    with stream.lock:  # one frame of a stream at a time, in order
        index = stream.accept(frame_index, client)
        with s.model_lock:
            result = stream.matcher.process(image.pixels, view, config)
        stream.last_index = index
        if stream.client is None:
            stream.client = client
        body = stream_frame_to_dict(result, stream_id, index)
        if label_set is not None:  # each track labelled once, when first seen
            with timer.stage("labels"):
                add_labels(body, frame_labels(result, label_set, stream.labels))
    result.timings = timer.seconds | result.timings
    observe_stages(result.timings)
    body["timings"] = timings_to_dict(result.timings)
    return body | {"catalog_version": view.version}


@bp.delete("/v1/catalogs/<catalog_id>/streams/<stream_id>")
@bp.input(StreamPath, location="path", arg_name="path")
@v1_doc(bp, "close_stream", {}, responses={204: {"description": "Closed"}})
def close_stream(catalog_id: str, stream_id: str, path: dict):
    """Close a stream of this worker and forget its tracks. 204; 404 if it is not open."""
    check_stream_id(stream_id)
    registry().close((caller().tenant, catalog_id, stream_id))
    return "", 204


@bp.get("/v1/streams")
@bp.output(StreamList)
@v1_doc(bp, "list_streams", {})
def list_streams():
    """The caller's open streams on the worker that answers (see ``X-Sighting-Worker``)."""
    who = caller()
    now = registry().clock()
    return {
        "streams": [
            {
                "id": st.key[2],
                "catalog": st.key[1],
                "frames": st.matcher.frames,
                "last_frame_index": st.last_index,
                "idle_s": round(now - st.last_seen, 3),
                "last_seen": round(time.time() - (now - st.last_seen), 3),
                "tracks": st.matcher.open_tracks,
                "verify_calls": st.matcher.verify_calls,
            }
            for st in registry().of_tenant(None if who.admin else who.tenant)
        ]
    }


def _video_file() -> str:
    """The request's video in a temp file, uploaded or named in the store; returns its path
    (the caller deletes it)."""
    if (request.mimetype or "").lower() == "application/json":
        return _copy_stored_video()
    return _save_upload()


def _copy_stored_video() -> str:
    """Copy the stored video a JSON body names (``{"key": "videos/..."}``) to a temp file.

    Recorded footage lives in the store under ``videos/`` (operators put it there with
    ``python -m catalog put-video`` or their own S3 tools); a request can name nothing else,
    so catalog data never leaves through this route. Naming a stored video is an operator's
    act: it needs an admin key when API keys are configured.
    """
    who = caller()
    if state().settings.auth_enabled and not who.admin:
        raise Forbidden("naming a stored video needs an admin key; upload the video instead")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "key" not in body:
        raise BadInput(f'JSON body must be {{"key": "{VIDEO_PREFIX}..."}}, a stored video')
    key = check_video_key(body["key"])
    fd, path = tempfile.mkstemp(suffix=".video")
    try:
        with os.fdopen(fd, "wb") as f:
            state().repository.store.copy_to(key, f, limit=state().settings.max_video_bytes)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _save_upload() -> str:
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
    return path


@bp.post("/v1/catalogs/<catalog_id>/videos")
@bp.input(VideoQuery, location="query", arg_name="query")
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
def process_video(catalog_id: str, query: dict):
    """Match a whole video file with tracking; answers ``application/x-ndjson``.

    Body: ``video/mp4`` (or multipart field ``video``), within the body size limit; or
    ``application/json`` ``{"key": "videos/<path>"}`` naming a video in the catalog store (no
    size limit but ``SIGHTING_MAX_VIDEO_BYTES``; admin key when keys are configured). Query:
    ``top_k``, ``classes``, ``verify``, ``stride`` (every n-th frame, default 1). Lines: one
    per detection per frame, ``{"frame", "time", "track", "box", "class", "item", "score",
    "verified", "verified_now"}``, then ``{"summary": {"frames", "fps", "verify_calls",
    "verify_per_frame", "seconds", "stages_ms"}}``. A file OpenCV cannot decode is 422.
    The detector runs at ``SIGHTING_VIDEO_IMGSZ`` for speed.
    """
    s = state()
    view = catalog_for_matching(catalog_id)
    config = _config(s.settings)
    stride = option("stride", int, 1, lo=1, hi=1000)
    path = _video_file()
    try:
        video = open_video(path)
    except BadInput:
        os.unlink(path)
        raise
    tconfig = TrackerConfig.from_settings(s.settings, s.settings.video_imgsz)
    matcher = TrackedMatcher(s.pipeline, tconfig)
    lock = s.model_lock

    def lines():
        stats = VideoStats()
        try:
            for record in run_video(
                iter(video), view, config, matcher=matcher, stride=stride, stats=stats, lock=lock
            ):
                for line in video_lines(record.result, record.index, video.fps):
                    yield json.dumps(line) + "\n"
            summary = video_summary(
                frames=stats.frames,
                seconds=stats.seconds,
                verify_calls=stats.verify_calls,
                stages=stats.stages,
                video_fps=video.fps,
            )
            yield json.dumps(summary) + "\n"
        finally:
            video.capture.release()
            os.unlink(path)

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")
