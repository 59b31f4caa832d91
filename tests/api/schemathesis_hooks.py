"""Schemathesis hooks for the fuzzing test: what a schema cannot say about a body.

An OpenAPI document says "a JPEG file" or "base64 bytes", not "a JPEG that decodes"; random
bytes are rightly refused (422), which schemathesis would count as a schema-valid request
rejected. So bodies of images and videos are drawn from real media that the test writes to
``$SIGHTING_FUZZ_MEDIA`` (photos of the grocery set, a few frames of a real clip), as every
other field is drawn from the document. Loaded by ``st`` through ``SCHEMATHESIS_HOOKS``.
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

MEDIA = Path(os.environ["SIGHTING_FUZZ_MEDIA"])


def _files(pattern: str) -> list[bytes]:
    found = [p.read_bytes() for p in sorted(MEDIA.glob(pattern))]
    if not found:
        raise RuntimeError(f"no {pattern} in {MEDIA}")
    return found


JPEGS, PNGS, VIDEOS = _files("*.jpg"), _files("*.png"), _files("*.mp4")
IMAGES = JPEGS + PNGS


def _zip(images: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, data in enumerate(images):
            zf.writestr(f"DCIM/IMG_{i:04d}.JPG", data)
    return buf.getvalue()


ZIPS = [_zip(JPEGS), _zip(JPEGS[:1])]  # a card (camera-trap batches)

schemathesis.openapi.media_type("image/jpeg", st.sampled_from(JPEGS))
schemathesis.openapi.media_type("image/png", st.sampled_from(PNGS))
schemathesis.openapi.media_type("video/mp4", st.sampled_from(VIDEOS))
schemathesis.openapi.media_type("application/zip", st.sampled_from(ZIPS))
schemathesis.openapi.format("binary", st.sampled_from(IMAGES))  # multipart image files
schemathesis.openapi.format("byte", st.sampled_from([base64.b64encode(i).decode() for i in IMAGES]))


def _on_photo(box):
    """A well-formed box string ordered so that x0 < x1 and y0 < y1, and kept on the photo (the
    media are 96 x 96); anything else as it was (to be refused)."""
    if not isinstance(box, str):
        return box
    try:
        x0, y0, x1, y1 = (float(v) for v in box.split(","))
    except ValueError:
        return box
    x0, x1 = sorted(min(max(v, 0.0), 95.0) for v in (x0, x1))
    y0, y1 = sorted(min(max(v, 0.0), 95.0) for v in (y0, y1))
    return f"{x0:g},{y0:g},{x0 + max(x1 - x0, 1):g},{y0 + max(y1 - y0, 1):g}"


def _explain(ctx) -> bool:
    operation = getattr(ctx, "operation", None)
    return operation is not None and operation.path.endswith("/explain")


def _prompts(options):
    """Prompts (labels by text) are distinct non-blank lines of at most 300 characters, and
    come without a label set: more than a schema can say. A well-formed string of the
    documented length (1 to its maxLength) is made such a list, and a label set beside it is
    dropped; anything else stays as it was (to be refused)."""
    from api.schemas import Prompts
    from labels.text import MAX_PROMPT_CHARS, MAX_PROMPTS

    if not isinstance(options, dict) or not isinstance(options.get("prompts"), str):
        return options
    text = options["prompts"]
    if not 1 <= len(text) <= Prompts.MAX_CHARS:
        return options
    lines = {line.strip()[:MAX_PROMPT_CHARS]: None for line in text.splitlines()}
    prompts = [line for line in lines if line][:MAX_PROMPTS] or ["a photo"]
    return {k: v for k, v in options.items() if k != "labels"} | {"prompts": "\n".join(prompts)}


@schemathesis.hook
def map_query(ctx, query):
    """An explain ``box`` must also have x0 < x1 and y0 < y1, which a pattern cannot say:
    order the four numbers of a well-formed box and keep them on the photo (ill-formed ones
    stay, to be refused). Prompts: `_prompts`."""
    query = _prompts(query)
    if not _explain(ctx) or not isinstance(query, dict) or "box" not in query:
        return query
    return query | {"box": _on_photo(query["box"])}


@schemathesis.hook
def map_body(ctx, body):
    """A batch's multipart ``archive`` is a zip (the document says so with contentMediaType,
    which schemathesis does not draw from): a real zip of the media photos. An explain
    ``box`` sent in the body (form field or JSON key) is ordered as in the query, and prompts
    are made a list of distinct lines (`_prompts`)."""
    body = _prompts(body)
    if _explain(ctx) and isinstance(body, dict) and "box" in body:
        return body | {"box": _on_photo(body["box"])}
    operation = getattr(ctx, "operation", None)
    if operation is None or not operation.path.endswith("/traps/batches"):
        return body
    if isinstance(body, dict) and "archive" in body:
        return body | {"archive": ZIPS[0]}
    return body
