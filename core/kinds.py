"""The catalog kinds: the one list every module and command line takes them from.

A kind chooses a catalog's embedder (`embedding.KIND_DEFAULTS`), its score calibration
(`matching.score`) and what ``POST /v1/catalogs`` accepts; ``--kind`` options offer `KINDS`.
"""

from __future__ import annotations

from typing import Literal, get_args

CatalogKind = Literal["products", "animals"]
KINDS: tuple[str, ...] = get_args(CatalogKind)
