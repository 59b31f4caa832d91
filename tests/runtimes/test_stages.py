"""The real detector (original YOLOv5 file) and a shipped embedder head on each runtime: the
same boxes, classes and vectors as torch (fp32), and what `GET /v1/info` reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.images import read_image
from detection import load_detector
from embedding import load_embedder
from tests.conftest import offline_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_detector_and_embedder_match_torch(
    runtime: str, exports: Path, tmp_path: Path, ultralytics_assets: Path
) -> None:
    image = read_image(ultralytics_assets / "bus.jpg")
    torch_s = offline_settings(tmp_path, runtime="torch", export_dir=exports, embedder="products")
    other_s = torch_s.model_copy(update={"runtime": runtime})
    ref_det, det = load_detector(torch_s), load_detector(other_s)
    assert (det.runtime.runtime, det.runtime.precision, det.runtime.reason) == (
        runtime,
        "fp32",
        None,
    )
    assert det.runtime.export.startswith("yolov5n-4f180cf23ba0717a-op17-bx3xhxw-fp32")
    (ref,) = ref_det.detect([image])
    (got,) = det.detect([image])
    assert len(got) == len(ref) >= 5
    np.testing.assert_array_equal(got.class_id, ref.class_id)
    np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=0.05)
    np.testing.assert_allclose(got.confidence, ref.confidence, atol=1e-4)

    ref_emb, emb = load_embedder(torch_s), load_embedder(other_s)
    assert emb.runtime.runtime == runtime and emb.fingerprint == ref_emb.fingerprint
    crops = list(ref.data["crop"])
    np.testing.assert_allclose(emb.embed(crops), ref_emb.embed(crops), atol=1e-4)


def test_info_reports_each_stages_runtime(exports: Path, tmp_path: Path) -> None:
    from api import create_app
    from matching.engine import load_pipeline

    settings = offline_settings(
        tmp_path, runtime="openvino", export_dir=exports, embedder_runtime="torch"
    )
    app = create_app(settings, pipeline=load_pipeline(settings))
    info = app.test_client().get("/v1/info").json
    products = info["kinds"]["products"]["runtimes"]
    assert products["detector"]["runtime"] == "openvino"
    assert products["embedder"] | {"export": None} == {
        "stage": "embedder:products",
        "runtime": "torch",
        "precision": "fp32",
        "requested": "torch/fp32",
        "reason": None,
        "export": None,
    }
