"""Where a batch's photos come from: a folder on disk, or a prefix of the store.

A `PhotoSource` names its photos (sorted, relative names such as ``DCIM/100/IMG_1.JPG``) and
reads one by name. ``python -m traps`` reads a folder (`FolderSource`); the HTTP batch job
reads the photos that were uploaded to, or already lie under, a store prefix
(`StorePrefixSource`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from catalog.store import Store, validate_prefix
from core.errors import BadInput, SightingError
from core.images import decode_image


class PhotoSource(Protocol):
    """The photos of one batch."""

    def names(self) -> list[str]:
        """Every photo's name, sorted (non-images included: the batch notes them)."""
        ...

    def read(self, name: str) -> bytes:
        """The photo's bytes. Raises OSError (or a `core.errors.SightingError`) if unreadable."""
        ...


class FolderSource:
    """The files under a folder (recursively; hidden files and folders left out)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BadInput(f"photo folder {self.folder} does not exist")

    def names(self) -> list[str]:
        return sorted(
            p.relative_to(self.folder).as_posix()
            for p in self.folder.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(self.folder).parts)
        )

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


class StorePrefixSource:
    """The objects under a store prefix (``uploads/<id>/`` or an operator's ``cards/...``)."""

    def __init__(self, store: Store, prefix: str) -> None:
        if not prefix.endswith("/"):
            prefix += "/"
        self.store = store
        self.prefix = validate_prefix(prefix)

    def names(self) -> list[str]:
        return [key[len(self.prefix) :] for key in self.store.list(self.prefix)]

    def read(self, name: str) -> bytes:
        return self.store.get(self.prefix + name)


def photo_reader(source: PhotoSource, max_pixels: int) -> Callable[[str], np.ndarray | None]:
    """name -> the decoded photo of ``source`` (uint8 RGB), or None when it cannot be read
    (for the pictures, which leave such photos out)."""

    def read(name: str) -> np.ndarray | None:
        try:
            return decode_image(source.read(name), max_pixels=max_pixels)
        except (OSError, SightingError):
            return None

    return read
