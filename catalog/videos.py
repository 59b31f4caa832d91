"""Recorded footage in the catalog store: the ``videos/`` area.

Operators put video files there (``python -m catalog put-video``, or their own S3 tools, or a
copy into the local store's folder); ``POST /v1/catalogs/<id>/videos`` can name one instead of
uploading it. Requests can name nothing outside this area, so catalog data never leaves
through the videos endpoint.
"""

from __future__ import annotations

from pathlib import Path

from catalog.store import Store, validate_key
from core.errors import BadInput

VIDEO_PREFIX = "videos/"


def check_video_key(key: object) -> str:
    """Return ``key`` if it is a valid store key under ``videos/``.

    Raises:
        BadInput: not a string, not under ``videos/``, or not a valid store key.
    """
    if not isinstance(key, str) or not key.startswith(VIDEO_PREFIX):
        raise BadInput(f"a stored video's key is a string starting with {VIDEO_PREFIX!r}")
    return validate_key(key)


def put_video(store: Store, file: Path, key: str) -> int:
    """Store ``file`` under ``key`` after checking that OpenCV decodes it; returns its size.

    The file is read whole into memory (several GB: copy it with S3 tools instead).

    Raises:
        BadInput: a bad key, a missing file, or a file that does not decode as video.
    """
    from tracking.video import open_video  # OpenCV only here

    check_video_key(key)
    if not file.is_file():
        raise BadInput(f"no file {file}")
    open_video(file).capture.release()
    data = file.read_bytes()
    store.put(key, data)
    return len(data)
