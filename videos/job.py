"""The ``videos`` job kind: a whole video's answer drawn on its frames, ``annotated.webm``.

Queued by ``POST /v1/catalogs/<id>/videos?annotate=true`` (`service.streams.process_video`)
once the answer is complete: the video and its answer lines wait in the store under
``uploads/<id>/`` (deleted when the job is done). No model runs here: the job decodes, draws
(`videos.annotate`) and encodes. Its file: ``annotated.webm``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jobs import JobContext, job_kind

FILE = "annotated.webm"


@job_kind("videos")
def videos_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Draw ``params["prefix"]``'s ``lines.jsonl`` on its ``video``.

    Returns:
        frames, width, height, fps, boxes (drawn, over all frames), file.
    """
    from videos.annotate import annotate_video, temp_video

    prefix = str(params["prefix"])
    ctx.progress(0, 0, "reading the video")
    lines = [json.loads(x) for x in ctx.store.get(prefix + "lines.jsonl").splitlines() if x]
    path = temp_video(ctx.store.get(prefix + "video"))
    try:
        done = annotate_video(
            path,
            lines,
            ctx.files_dir / FILE,
            float(params.get("fps") or 30.0),
            int(params.get("stride") or 1),
            progress=lambda n: ctx.progress(n, 0, f"{n} frames drawn"),
        )
    finally:
        os.unlink(path)
    ctx.store.delete_prefix(prefix)
    return {
        "frames": done.frames,
        "width": done.size[0],
        "height": done.size[1],
        "fps": round(done.fps, 3),
        "boxes": done.boxes,
        "file": FILE,
    }
