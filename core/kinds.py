"""The catalog kinds: the one list every module and command line takes them from.

A kind chooses a catalog's embedder (`embedding.KIND_MODELS`), its score calibration
(`matching.score`) and what ``POST /v1/catalogs`` accepts; ``--kind`` options offer `KINDS`.
``products`` and ``animals`` have models trained for them; ``vehicles``, ``wildlife`` and
``other`` use the ImageNet features and each catalog's own calibration (README).
"""

from __future__ import annotations

from typing import Literal, get_args

CatalogKind = Literal["products", "animals", "vehicles", "wildlife", "other"]
KINDS: tuple[str, ...] = get_args(CatalogKind)
