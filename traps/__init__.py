"""Camera traps: per photo whether an animal is there, what it is (labels by example or by
text), which known individual; for a whole card at once (`run_batch`, ``python -m traps``).
"""

from traps.batch import (
    COCO_ANIMALS,
    BatchSummary,
    TrapConfig,
    TrapModels,
    animal_classes,
    process_photo,
    run_batch,
)
from traps.records import CSV_COLUMNS, PhotoRecord, record_to_dict
from traps.sources import FolderSource, PhotoSource, StorePrefixSource

__all__ = [
    "COCO_ANIMALS",
    "CSV_COLUMNS",
    "BatchSummary",
    "FolderSource",
    "PhotoSource",
    "PhotoRecord",
    "TrapConfig",
    "TrapModels",
    "animal_classes",
    "process_photo",
    "record_to_dict",
    "run_batch",
    "StorePrefixSource",
]
