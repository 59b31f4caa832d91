"""The export cache and the runtimes on a small network built here (real ONNX export, real
OpenVINO and ONNX Runtime): caching by hash and shape, stale folders, two processes exporting
at once, fallback to torch, a missing package, and the GPU provider choice (on the CPU)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from runtimes import RuntimeNotInstalled, RuntimeRequest, accelerate, select_providers
from runtimes.cache import META, ExportKey, is_valid, lookup, publish
from runtimes.engines import require, resolve_runtime
from runtimes.stage import export_key

CPU = torch.device("cpu")


class Small(nn.Module):
    """A conv net with a dynamic batch, height and width."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


class Untraceable(Small):
    """Its forward leaves torch for numpy: no ONNX export can follow it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = float(np.asarray(x.detach().numpy()).std())
        if scale > 1e9:  # data-dependent Python control flow as well
            return x
        return super().forward(x) * scale


class SizeBaked(Small):
    """A Python number made from the input's sides (as kornia's ALIKED does when it clamps by
    ``max(h, w) / 4``): a trace bakes the traced size in, so the export agrees with torch at
    that size only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * (float(max(x.shape[2], x.shape[3])) / 32.0)


def small_model(weights: Path, seed: int = 0) -> Small:
    """A `Small` with seeded weights, saved to ``weights`` (the export's source file)."""
    torch.manual_seed(seed)
    model = Small().eval()
    torch.save(model.state_dict(), weights)
    return model


def run(model: nn.Module, weights: Path, cache: Path, runtime: str, size: int = 32, **kw):
    request = RuntimeRequest(runtime=runtime, cache_dir=cache, threads=1, **kw)
    return accelerate(
        model,
        stage="test",
        stem=weights.stem,
        sources=[weights],
        sample=torch.zeros(1, 3, size, size),
        shape=("b", 3, "h", "w"),
        request=request,
        device=CPU,
    )


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_export_runs_like_torch_with_a_dynamic_batch(tmp_path: Path, runtime: str) -> None:
    model = small_model(tmp_path / "small.pt")
    forward, info = run(model, tmp_path / "small.pt", tmp_path / "cache", runtime)
    assert (info.runtime, info.precision, info.reason) == (runtime, "fp32", None)
    assert forward is not model
    for shape in [(1, 3, 32, 32), (4, 3, 40, 24)]:  # other batch and sides than the trace's
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = model(x)
        got = forward(x)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5)
    folder = tmp_path / "cache" / info.export
    assert (
        is_valid(
            folder,
            export_key(runtime, "fp32", "small", [tmp_path / "small.pt"], ("b", 3, "h", "w")),
        )
        is None
    )


def test_cached_once_and_exported_again_when_hash_or_shape_changes(tmp_path: Path) -> None:
    weights, cache = tmp_path / "small.pt", tmp_path / "cache"
    model = small_model(weights)
    _, first = run(model, weights, cache, "onnxruntime")
    written = (cache / first.export / "model.onnx").stat().st_mtime_ns
    _, again = run(model, weights, cache, "onnxruntime")
    assert again.export == first.export  # found, not written again
    assert (cache / first.export / "model.onnx").stat().st_mtime_ns == written

    changed = small_model(weights, seed=1)  # new weights in the same file: new sha256
    forward, other = run(changed, weights, cache, "onnxruntime")
    assert other.export != first.export
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(forward(x), changed(x), atol=1e-5)  # the new weights run

    key = export_key("onnxruntime", "fp32", "small", [weights], ("b", 3, 64, 64))
    request = RuntimeRequest(runtime="onnxruntime", cache_dir=cache, threads=1)
    _, fixed = accelerate(
        changed,
        stage="t",
        stem="small",
        sources=[weights],
        sample=torch.zeros(1, 3, 64, 64),
        shape=("b", 3, 64, 64),
        request=request,
        device=CPU,
    )
    assert fixed.export == key.folder_name and "bx3x64x64" in fixed.export
    assert len({first.export, other.export, fixed.export}) == 3


def test_a_stale_export_is_never_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    weights, cache = tmp_path / "small.pt", tmp_path / "cache"
    model = small_model(weights)
    _, info = run(model, weights, cache, "openvino")
    folder = cache / info.export
    # the weights file of the model, truncated half-way: never run
    blob = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(blob[: len(blob) // 2])
    with caplog.at_level(logging.WARNING):
        forward, again = run(model, weights, cache, "openvino")
    assert "stale export" in caplog.text and "model.bin changed" in caplog.text
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(forward(x), model(x), atol=1e-5)
    assert is_valid(cache / again.export, _key(weights, "openvino")) is None

    # a folder of the right name written for another source (meta.json says so): ignored
    meta = json.loads((folder / META).read_text())
    meta["key"]["source_sha256"] = "0" * 64
    (folder / META).write_text(json.dumps(meta))
    assert lookup(cache, _key(weights, "openvino")) is None
    assert not folder.exists()  # moved aside; the next load exports again


def _key(weights: Path, runtime: str) -> ExportKey:
    return export_key(runtime, "fp32", "small", [weights], ("b", 3, "h", "w"))


def _export_in_a_process(weights: str, cache: str, queue) -> None:
    """Child: load the same source and export it (slowly), then run what it got."""
    import time

    import runtimes.stage as stage

    original = stage.export_onnx

    def slow_export(*args, **kwargs):
        original(*args, **kwargs)
        time.sleep(0.5)  # both children are inside the write at once

    stage.export_onnx = slow_export
    torch.manual_seed(0)
    model = Small().eval()
    model.load_state_dict(torch.load(weights))
    forward, info = run(model, Path(weights), Path(cache), "onnxruntime")
    x = torch.ones(2, 3, 32, 32)
    queue.put((info.export, forward(x).numpy().tolist()))


def _watch(cache: str, key_name: str, stop, queue) -> None:
    """Child: while the writers run, every folder that appears under the final name must be
    complete (its meta.json valid and every file's sha256 right) at the moment it is seen."""
    from runtimes.cache import is_valid as valid

    seen, bad = 0, []
    folder = Path(cache) / key_name
    while not stop.is_set():
        if folder.exists():
            seen += 1
            reason = valid(folder, _key(Path(cache).parent / "small.pt", "onnxruntime"))
            if reason is not None:
                bad.append(reason)
    queue.put((seen, bad))


@pytest.mark.slow  # three spawned processes, each importing torch; two export to ONNX
def test_two_processes_exporting_at_once_never_read_half_a_file(tmp_path: Path) -> None:
    weights, cache = tmp_path / "small.pt", tmp_path / "cache"
    model = small_model(weights)
    ctx = multiprocessing.get_context("spawn")
    queue, watch_queue, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    watcher = ctx.Process(
        target=_watch,
        args=(str(cache), _key(weights, "onnxruntime").folder_name, stop, watch_queue),
    )
    watcher.start()
    writers = [
        ctx.Process(target=_export_in_a_process, args=(str(weights), str(cache), queue))
        for _ in range(2)
    ]
    for p in writers:
        p.start()
    results = [queue.get(timeout=180) for _ in writers]
    for p in writers:
        p.join(timeout=60)
        assert p.exitcode == 0
    stop.set()
    seen, bad = watch_queue.get(timeout=60)
    watcher.join(timeout=60)
    assert bad == [] and seen > 0
    with torch.no_grad():
        expected = model(torch.ones(2, 3, 32, 32)).numpy()
    for name, out in results:
        assert name == _key(weights, "onnxruntime").folder_name
        np.testing.assert_allclose(np.array(out, dtype=np.float32), expected, atol=1e-5)
    leftovers = [p.name for p in cache.iterdir() if p.name != name]
    assert leftovers == []  # no temporary folder left behind


def test_publish_keeps_the_first_complete_folder(tmp_path: Path) -> None:
    key = ExportKey("m", "a" * 64, 17, ("b", 3), "fp32", "onnx")

    def writer(text: str):
        def write(folder: Path) -> list[str]:
            (folder / "model.onnx").write_text(text)
            return ["model.onnx"]

        return write

    first = publish(tmp_path, key, writer("one"))
    second = publish(tmp_path, key, writer("two"))  # lost the race: the first one stays
    assert first == second and (first / "model.onnx").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == [key.folder_name]


def test_a_model_that_cannot_export_falls_back_to_torch_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    model = Untraceable().eval()
    torch.save(model.state_dict(), tmp_path / "odd.pt")
    with caplog.at_level(logging.WARNING):
        forward, info = run(model, tmp_path / "odd.pt", tmp_path / "cache", "openvino")
    assert forward is model
    assert (info.runtime, info.requested) == ("torch", "openvino/fp32")
    assert info.reason.startswith("openvino could not export or load odd")
    assert info.as_dict()["reason"] == info.reason  # what /v1/info shows
    lines = [r for r in caplog.records if "falling back to torch" in r.getMessage()]
    assert len(lines) == 1
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "cache").iterdir())


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_an_export_that_baked_its_traced_size_in_falls_back_to_torch(
    tmp_path: Path, runtime: str
) -> None:
    """Right at the traced size, wrong at any other: the check at a second size refuses it."""
    torch.manual_seed(0)
    model = SizeBaked().eval()
    torch.save(model.state_dict(), tmp_path / "baked.pt")
    forward, info = run(model, tmp_path / "baked.pt", tmp_path / "cache", runtime)
    assert forward is model and info.runtime == "torch"
    assert "differ from torch's" in info.reason and "(input (2, 3, 64, 64))" in info.reason


def test_int8_export_is_written_cached_and_runs_close_to_torch(tmp_path: Path) -> None:
    """NNCF int8 of a small net (calibrated on 16 random inputs): the export is found by the
    int8 request, runs int8, and its outputs follow torch's (int8 rounding, not garbage)."""
    from runtimes.quantize import quantize_openvino

    model = small_model(tmp_path / "small.pt")
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, 3, 32, 32), dtype=np.float32) for _ in range(16)]
    folder = quantize_openvino(
        model,
        stem="small",
        sources=[tmp_path / "small.pt"],
        sample=torch.zeros(1, 3, 32, 32),
        shape=("b", 3, "h", "w"),
        inputs=inputs,
        cache_dir=tmp_path / "cache",
    )
    assert "-int8-openvino-" in folder.name
    forward, info = run(
        model, tmp_path / "small.pt", tmp_path / "cache", "openvino", precision="int8"
    )
    assert (info.runtime, info.precision, info.reason, info.export) == (
        "openvino",
        "int8",
        None,
        folder.name,
    )
    x = torch.from_numpy(np.concatenate(inputs[:4]))
    with torch.no_grad():
        expected = model(x)
    got = forward(x)
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) < 0.1 * scale


def test_int8_without_its_export_runs_fp32_and_says_so(tmp_path: Path) -> None:
    model = small_model(tmp_path / "small.pt")
    _, info = run(model, tmp_path / "small.pt", tmp_path / "cache", "openvino", precision="int8")
    assert (info.runtime, info.precision) == ("openvino", "fp32")
    assert "no int8 export" in info.reason and "matching.quantize" in info.reason


@pytest.mark.parametrize("package", ["openvino", "onnxruntime"])
def test_a_runtime_not_installed_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # import now raises ImportError
    with pytest.raises(RuntimeNotInstalled, match=f"pip install {package}=="):
        require(package)
    model = small_model(tmp_path / "small.pt")
    with pytest.raises(RuntimeNotInstalled, match=f"pip install {package}=="):
        run(model, tmp_path / "small.pt", tmp_path / "cache", package)


def test_cuda_provider_selection() -> None:
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(gpu, "cuda") == gpu
    assert select_providers(gpu, "cuda", tensorrt=False) == gpu[1:]
    assert select_providers(gpu[1:], "cuda") == gpu[1:]
    assert select_providers(gpu, "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(Exception, match="install onnxruntime-gpu"):
        select_providers(["CPUExecutionProvider"], "cuda")
    # auto: onnxruntime on a GPU only with its CUDA provider, else torch runs CUDA itself
    assert resolve_runtime("auto", "cuda", gpu) == "onnxruntime"
    assert resolve_runtime("auto", "cuda", ["CPUExecutionProvider"]) == "torch"
    assert resolve_runtime("auto", "cpu", gpu) == "openvino"  # installed here
    assert resolve_runtime("onnxruntime", "cpu", []) == "onnxruntime"


def test_threads_follow_the_setting(tmp_path: Path) -> None:
    model = small_model(tmp_path / "small.pt")
    forward, info = run(model, tmp_path / "small.pt", tmp_path / "cache", "onnxruntime")
    session = forward.model.session  # the OrtModel behind it
    assert session.get_session_options().intra_op_num_threads == 1
    forward, info = run(model, tmp_path / "small.pt", tmp_path / "cache", "openvino")
    compiled = forward.model.compiled
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1


@pytest.mark.slow  # a whole yolov8n (random weights) exported to OpenVINO, and run by torch
def test_ultralytics_detector_exports_with_dynamic_shapes(tmp_path: Path) -> None:
    """An ultralytics checkpoint (random weights, built here): the exported network gives
    torch's outputs at another input size than the trace's, and detect runs through it."""
    from ultralytics import YOLO

    from detection import Detector, DetectorConfig
    from detection.detector import _FirstOutput

    path = tmp_path / "yolov8n-random.pt"
    YOLO("yolov8n.yaml").save(path)
    request = RuntimeRequest(runtime="openvino", cache_dir=tmp_path / "cache", threads=1)
    config = DetectorConfig(imgsz=160, conf=0.01, max_det=5)
    det = Detector.from_weights(path, CPU, config, request)
    assert (det.runtime.runtime, det.runtime.reason) == ("openvino", None)
    backend = det.backend
    x = torch.rand(2, 3, 160, 224)
    with torch.no_grad():
        expected = _FirstOutput(backend.yolo.model)(x)
    assert torch.allclose(backend._forward(x), expected, atol=1e-3)
    frame = (np.random.default_rng(0).random((120, 200, 3)) * 255).astype(np.uint8)
    (found,) = det.detect([frame], whole_frame=False)
    assert len(found) <= 5 and found.xyxy.dtype == np.float32
    reference = Detector.from_weights(path, CPU, config)  # torch: YOLO.predict
    (ref,) = reference.detect([frame], whole_frame=False)
    if len(ref) and len(found):  # the best box agrees (same letterbox and NMS)
        np.testing.assert_allclose(found.xyxy[0], ref.xyxy[0], atol=2.0)
        assert found.class_id[0] == ref.class_id[0]
