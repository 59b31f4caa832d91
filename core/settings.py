"""The one settings object, read from the environment and `.env`.

Every variable is ``SIGHTING_<FIELD>`` (upper case) and is listed with its default and
meaning in `.env.example`; `tests/test_settings.py` checks that the two agree.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """All knobs of Sighting. Construct directly in tests: ``Settings(storage="s3", ...)``."""

    model_config = SettingsConfigDict(
        env_prefix="SIGHTING_", env_file=".env", extra="ignore", frozen=True
    )

    # --- models -------------------------------------------------------------------------
    weights_dir: Path = Field(REPO_ROOT / "weights", description="folder searched for model files")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    detector: str = "yolov5su"
    embedder: str = Field("auto", description="model name, or auto: the catalog kind's default")
    # with embedder=auto, each kind's model: a registry name, or the path of a head file that
    # python -m embedding.train wrote (e.g. trained on your own catalog)
    products_embedder: str = Field("products", description="products kind's model (auto)")
    animals_embedder: str = Field("animals", description="animals kind's model (auto)")
    calibration_file: Path | None = Field(
        None, description="fused-score calibration JSON (default: matching/calibration.json)"
    )
    verifier: str = "loftr"
    threads: int = Field(
        0, ge=0, description="CPU threads of torch, OpenVINO, ONNX Runtime; 0 = all cores"
    )
    runtime: Literal["auto", "torch", "openvino", "onnxruntime"] = Field(
        "auto", description="inference runtime; auto = openvino on the CPU when installed"
    )
    detector_runtime: Literal["", "auto", "torch", "openvino", "onnxruntime"] = Field(
        "", description="the detector's runtime; '' = SIGHTING_RUNTIME"
    )
    embedder_runtime: Literal["", "auto", "torch", "openvino", "onnxruntime"] = Field(
        "", description="the embedders' runtime; '' = SIGHTING_RUNTIME"
    )
    detector_precision: Literal["fp32", "int8"] = Field(
        "fp32", description="int8 needs python -m matching.quantize first"
    )
    embedder_precision: Literal["fp32", "int8"] = Field(
        "fp32", description="int8 needs python -m matching.quantize first"
    )
    export_dir: Path = Field(
        REPO_ROOT / ".cache" / "exports", description="cache of exported models (per file hash)"
    )
    allow_download: bool = Field(False, description="fetch missing weights (sha256-checked)")
    clip: str = Field(
        "",
        description="CLIP files for labels by text (prompts=) over HTTP: a transformers or "
        "open_clip folder, an open_clip checkpoint, or a registry labeler; '' = prompts refused",
    )
    clip_arch: str = Field("ViT-B-32", description="open_clip architecture of a checkpoint file")

    # --- pipeline -----------------------------------------------------------------------
    det_conf: float = Field(0.25, ge=0.0, le=1.0)
    det_max: int = Field(20, ge=1, description="most detections kept per frame")
    whole_frame: bool = Field(True, description="also match the whole frame as one crop")
    shortlist: int = Field(5, ge=0, description="candidates per crop that keypoints verify")
    top_k: int = Field(5, ge=1, description="default number of matches per detection")
    search_top_k: int = Field(20, ge=1, description="default number of items a search returns")
    max_top_k: int = Field(100, ge=1)
    keypoint_cache: int = Field(2048, ge=0, description="catalog images kept in the keypoint LRU")
    # local ranking (issue 28, docs/local-ranking.md): candidates ranked by keypoints on the object
    local_rank_kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["vehicles", "wildlife", "other"],
        description="catalog kinds ranked by local features by default (rank=local)",
    )
    local_shortlist: int = Field(
        300, ge=1, le=5000, description="rank=local: top N by embedding that keypoints rank"
    )
    local_budget_s: float = Field(
        3.0, ge=0.0, description="rank=local: seconds of keypoint work per request; 0 = no limit"
    )

    # --- streams and video ------------------------------------------------------------
    stream_idle_s: float = Field(60.0, gt=0.0, description="close a stream idle this long")
    max_streams: int = Field(64, ge=1, description="open streams per worker (LRU evicted)")
    reverify_frames: int = Field(90, ge=1, description="frames between a track's verifications")
    drift_cosine: float = Field(0.8, ge=-1.0, le=1.0, description="re-verify below this cosine")
    verify_budget_ms: float = Field(
        40.0, ge=0.0, description="average verification ms per stream frame; 0 = no limit"
    )
    stream_shortlist: int = Field(2, ge=1, description="candidates a track is verified against")
    async_verify: bool = Field(
        True, description="streams/videos: verify in a worker thread, verdict on a later frame"
    )
    stream_imgsz: int = Field(0, ge=0, description="detector size for streams; 0 = detector's")
    video_imgsz: int = Field(416, ge=0, description="detector size for videos; 0 = detector's")
    max_video_bytes: int = Field(
        4 * 1024**3, ge=1, description="largest stored video a request may name (videos/...)"
    )

    # --- storage ------------------------------------------------------------------------
    storage: Literal["local", "s3"] = "local"
    data_dir: Path = Field(REPO_ROOT / "data", description="root of the local store")
    s3_bucket: str = "sighting"
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    sync_interval_s: float = Field(2.0, ge=0.0, description="how stale a worker's catalog may be")

    # --- vector index (issue 27: docs/milvus.md) ----------------------------------------
    index_backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="faiss: each worker indexes its catalogs; milvus: a shared engine"
    )
    milvus_uri: str = Field(
        "", description="Milvus Lite folder (one process) or http://host:19530; '' = data_dir"
    )
    milvus_token: str | None = Field(None, description="user:password or API key of a server")
    milvus_timeout_s: float = Field(10.0, gt=0.0, description="slower Milvus calls answer 503")
    milvus_flat_max: int = Field(
        200_000, ge=0, description="vectors per collection kept in an exact FLAT index"
    )
    milvus_ef: int = Field(256, ge=1, description="HNSW search breadth (at least k)")

    # --- API and limits -----------------------------------------------------------------
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(50_000_000, ge=1)
    max_images_per_request: int = Field(32, ge=1)
    max_queue: int = Field(16, ge=0, description="model calls waiting per worker before 503")
    max_batch_bytes: int = Field(
        4 * 1024**3, ge=1, description="largest camera-trap batch upload (zip expanded)"
    )
    max_batch_photos: int = Field(100_000, ge=1, description="photos in one batch upload")

    # --- jobs (the task queue, jobs/) ---------------------------------------------------
    queue_url: str = Field(
        "", description="'' = SQLite under data_dir; sqlite:///PATH; redis://HOST:PORT/DB"
    )
    job_workers: int = Field(1, ge=0, description="consumer threads gunicorn starts; 0 = none")
    job_heartbeat_s: float = Field(5.0, gt=0.0, description="a running job's heartbeat period")
    job_timeout_s: float = Field(60.0, gt=0.0, description="no heartbeat this long = worker dead")
    job_max_attempts: int = Field(2, ge=1, description="runs of a job whose worker keeps dying")
    job_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "analytics.job",
            "traps.job",
            "jobs.calibration",
            "watches.job",
            "discovery.job",
            "videos.job",
        ],
        description="modules registering job kinds",
    )

    sightings_keep_all: bool = Field(
        False, description="keep every detect/search/stream answer as sightings (keep=true)"
    )
    sightings_retention: int = Field(
        10_000, ge=1, description="sightings kept per catalog (oldest unreviewed dropped first)"
    )
    duplicate_min_score: float = Field(
        0.5, ge=0.0, le=1.0, description="an upload names existing items scoring at least this"
    )

    calibration_refit: bool = Field(
        True, description="refit a catalog's own calibration (a job) after it changes"
    )
    calibration_debounce_s: float = Field(
        10.0, ge=0.0, description="a refit waits until the catalog is unchanged this long"
    )

    # --- watches and webhooks (watches/) ---------------------------------------------------
    watch_debounce_s: float = Field(
        2.0, ge=0.0, description="a watch's match job waits until uploads pause this long"
    )
    watch_top_k: int = Field(5, ge=1, description="candidates per image a watch considers")
    watch_min_score: float = Field(
        0.5, ge=0.0, le=1.0, description="a new watch's default minimum score"
    )
    webhook_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts/CIDRs on private, loopback or link-local ranges webhooks may reach",
    )
    webhook_timeout_s: float = Field(5.0, gt=0.0, description="one webhook POST's timeout")
    webhook_max_attempts: int = Field(8, ge=1, description="POSTs of one alert before giving up")
    webhook_backoff_s: float = Field(
        2.0, gt=0.0, description="wait before the 2nd POST; doubles each retry (cap 1 h)"
    )

    # --- discovery of new individuals (discovery/) ------------------------------------------
    discovery_max_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="an unreviewed sighting whose best score is below this counts as unknown",
    )
    discovery_neighbours: int = Field(10, ge=1, description="neighbours searched per photo")
    discovery_link_similarity: float = Field(
        0.5, ge=-1.0, le=1.0, description="cosine similarity linking photos into a cluster"
    )
    discovery_max_group: int = Field(
        30, ge=2, description="a larger cluster is split at a higher similarity"
    )
    discovery_max_photos: int = Field(
        2000, ge=2, description="photos one discovery job groups (the most recent)"
    )

    # --- deploy (read by gunicorn.conf.py) --------------------------------------------------
    bind: str = "127.0.0.1:8000"
    workers: int = Field(2, ge=1, description="gunicorn worker processes, each with its own models")
    worker_threads: int = Field(4, ge=1, description="threads per worker (model calls serialised)")
    daemon: bool = False
    pidfile: Path = Field(REPO_ROOT / "run" / "sighting.pid")
    log_dir: Path = Field(REPO_ROOT / "logs", description="access.log and error.log (daemon)")

    @field_validator(
        "api_keys", "admin_keys", "job_modules", "local_rank_kinds", "webhook_allow", mode="before"
    )
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("local_rank_kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        from core.kinds import KINDS

        unknown = [k for k in value if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
        return value

    @property
    def auth_enabled(self) -> bool:
        """Whether requests must carry an ``X-API-Key`` (any key configured)."""
        return bool(self.api_keys or self.admin_keys)


def default_of(name: str) -> Any:
    """The default of one setting: how component configs take their defaults from this table.

    Raises:
        KeyError: no setting has this name.
    """
    return Settings.model_fields[name].get_default(call_default_factory=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings from the environment (cached; tests build their own)."""
    return Settings()
