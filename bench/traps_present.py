"""Animal present, measured: precision and recall of "an animal is in this photo".

    SIGHTING_THREADS=1 python -m bench.traps_present [--n 150]

Photos with an animal: dog photos of ../shared/data/dogs (aligned faces), also as grey copies
(infrared-like). Without: grocery shelf photos, the hpatches images, every 30th frame of the
two video clips (traffic, drinks). The detector is the configured one (SIGHTING_DETECTOR;
yolov5n offline), its animal classes `traps.animal_classes`, the default threshold
(SIGHTING_DET_CONF). Prints one JSON line per set and one with precision and recall.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter

import cv2
import numpy as np

from core import cli
from core.images import list_images, read_image
from core.settings import REPO_ROOT, get_settings
from traps.batch import animal_classes

DATA = REPO_ROOT.parent / "shared" / "data"


def _video_frames(step: int) -> list[np.ndarray]:
    frames = []
    for clip in ("highway-cars.mp4", "coke-shelf.mp4"):
        cap = cv2.VideoCapture(str(DATA / "video" / clip))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
        cap.release()
    return frames


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        epilog=cli.EXIT_STATUS,
        prog="python -m bench.traps_present",
        description="Precision/recall of 'animal present' on photos with and without animals.",
    )
    parser.add_argument("--n", type=int, default=150, help="photos per photo set")
    parser.add_argument("--video-step", type=int, default=30, help="every Nth video frame")
    args = parser.parse_args(argv)
    from core.runtime import configure_threads
    from detection import load_detector

    settings = get_settings()
    detector = load_detector(settings)
    configure_threads(settings.threads)
    classes = animal_classes(detector.names)
    threshold = settings.det_conf
    rng = random.Random(0)
    dogs = [p for d in sorted((DATA / "dogs" / "queries").iterdir()) for p in list_images(d)]
    groc = [p for d in sorted((DATA / "grocery" / "queries").iterdir()) for p in list_images(d)]
    rng.shuffle(dogs)
    rng.shuffle(groc)
    dog_images = [read_image(p) for p in dogs[: args.n]]
    sets = {
        "dogs": (True, dog_images),
        "dogs-grey": (
            True,
            [np.repeat(i.mean(2, keepdims=True).astype(np.uint8), 3, 2) for i in dog_images],
        ),
        "grocery": (False, [read_image(p) for p in groc[: args.n]]),
        "hpatches": (False, [read_image(p) for p in list_images(DATA / "hpatches-v_graffiti")]),
        "video-frames": (False, _video_frames(args.video_step)),
    }
    tp = fp = fn = tn = 0
    start = time.perf_counter()
    for name, (has_animal, images) in sets.items():
        found = Counter()
        present = 0
        for image in images:
            det = detector.detect([image], conf=threshold, classes=classes, whole_frame=False)[0]
            if len(det):
                present += 1
                found[str(det.class_name[0])] += 1
        n = len(images)
        if has_animal:
            tp, fn = tp + present, fn + n - present
        else:
            fp, tn = fp + present, tn + n - present
        print(
            json.dumps(
                {
                    "set": name,
                    "animal": has_animal,
                    "photos": n,
                    "present": present,
                    "rate": round(present / max(1, n), 4),
                    "classes": dict(found.most_common(5)),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "detector": settings.detector,
                "threshold": threshold,
                "precision": round(tp / max(1, tp + fp), 4),
                "recall": round(tp / max(1, tp + fn), 4),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "tn": tn,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
