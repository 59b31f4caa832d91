"""The same store tests against LocalStore (tmp folder) and S3Store (moto on 127.0.0.1)."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from catalog.s3_store import S3Config, S3Store
from catalog.store import Store, validate_key, validate_prefix
from catalog.stores import open_store
from core.errors import BadInput, Conflict, NotFound, StoreUnavailable, TooLarge
from core.settings import Settings
from tests.s3_server import ACCESS_KEY, SECRET_KEY, MotoS3

BINARY = bytes(range(256)) * 3

# --- keys -------------------------------------------------------------------------------
BAD_KEYS = [
    "",  # empty
    "/etc/passwd",  # absolute
    "../outside",  # parent segment
    "a/../../b",  # parent segment in the middle
    "a/..",  # parent segment at the end
    "./a",  # current-folder segment
    "a//b",  # empty segment
    "a/",  # trailing slash: a folder, not an object
    "a\\b",  # backslash (a separator on Windows)
    "..\\..\\x",  # backslash traversal
    "a\x00b",  # NUL
    "a\nb",  # control character
    ".locks/00.lock",  # reserved (the local store's lock files)
    "a/.b.tmp",  # reserved (temp files)
    "x" * 1025,  # over S3's 1024-byte limit
    "a/" + "y" * 256,  # one segment over 255 bytes
]
GOOD_KEYS = [
    "single",
    "catalogs/abc123/manifest.json",
    "catalogs/abc123/images/item-1.x_y/img001.jpg",
    "catalogs/abc123/features/img001.emb.npy",
    "ünïcode/ключ.bin",
    "a/b..c",  # dots inside a segment are fine
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_refuses(key: str) -> None:
    with pytest.raises(BadInput):
        validate_key(key)


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_validate_key_accepts(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("prefix", ["", "a", "a/", "catalogs/abc/images/"])
def test_validate_prefix_accepts(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a//", "a\\"])
def test_validate_prefix_refuses(prefix: str) -> None:
    with pytest.raises(BadInput):
        validate_prefix(prefix)


def test_store_refuses_bad_keys_before_any_io(store: Store, tmp_path: Path) -> None:
    for key in BAD_KEYS:
        for call in (
            lambda k: store.put(k, b"x"),
            lambda k: store.put_if(k, b"x", expected_etag=None),
            lambda k: store.get(k),
            lambda k: store.delete(k),
        ):
            with pytest.raises(BadInput):
                call(key)
    assert store.list() == []
    # Nothing escaped the local root (tmp_path holds only the store's own folder, if any).
    assert {p.name for p in tmp_path.iterdir()} <= {"store"}


def test_store_round_trips_good_keys(store: Store) -> None:
    for key in GOOD_KEYS:
        store.put(key, BINARY + key.encode())
    assert store.list() == sorted(GOOD_KEYS)
    for key in GOOD_KEYS:
        assert store.get(key) == BINARY + key.encode()


# --- basic operations -----------------------------------------------------------------------
def test_put_get_overwrite_and_etags(store: Store) -> None:
    etag1 = store.put("a/b/obj.bin", BINARY)
    data, etag = store.get_with_etag("a/b/obj.bin")
    assert data == BINARY and etag == etag1 == store.etag("a/b/obj.bin")
    etag2 = store.put("a/b/obj.bin", b"second")
    assert store.get("a/b/obj.bin") == b"second"
    assert etag2 != etag1 and store.etag("a/b/obj.bin") == etag2
    assert store.put("empty", b"") and store.get("empty") == b""


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get("missing/key"),
        lambda s: s.get_with_etag("missing/key"),
        lambda s: s.etag("missing/key"),
        lambda s: s.get("a"),  # "a" is only a folder of a/b/obj
    ],
)
def test_missing_keys_raise_not_found(store: Store, call) -> None:
    store.put("a/b/obj", b"x")
    with pytest.raises(NotFound) as info:
        call(store)
    assert info.value.status == 404


def test_copy_to_streams_an_object_within_its_limit(store: Store) -> None:
    data = bytes(range(256)) * 9000  # 2.2 MB: more than one copy chunk
    store.put("videos/cam/a.mp4", data)
    out = io.BytesIO()
    assert store.copy_to("videos/cam/a.mp4", out, limit=len(data)) == len(data)
    assert out.getvalue() == data
    with pytest.raises(TooLarge) as info:
        store.copy_to("videos/cam/a.mp4", io.BytesIO(), limit=len(data) - 1)
    assert info.value.status == 413
    with pytest.raises(NotFound):
        store.copy_to("videos/cam/missing.mp4", io.BytesIO())
    with pytest.raises(BadInput):
        store.copy_to("videos/../catalogs/x", io.BytesIO())


def test_exists(store: Store) -> None:
    assert not store.exists("k/v")
    store.put("k/v", b"1")
    assert store.exists("k/v")
    assert not store.exists("k")  # a prefix is not an object


KEYS = ["a/b/1", "a/b/2", "a/bc/3", "a/z", "z"]
LIST_CASES = [
    ("", KEYS),  # everything
    ("a/b/", ["a/b/1", "a/b/2"]),  # a "folder"
    ("a/b", ["a/b/1", "a/b/2", "a/bc/3"]),  # a plain string prefix, as S3
    ("a/b/1", ["a/b/1"]),  # a whole key
    ("nope/", []),  # nothing there
    ("z/", []),  # z is an object, not a folder
]
CHILDREN_CASES = [
    ("", ["a", "z"]),
    ("a/", ["b", "bc", "z"]),  # folders and objects, one level only
    ("a/b/", ["1", "2"]),
    ("nope/", []),
]


def test_list_and_list_children(store: Store) -> None:
    for key in reversed(KEYS):
        store.put(key, key.encode())
    for prefix, expected in LIST_CASES:
        assert store.list(prefix) == expected, prefix
    for prefix, expected in CHILDREN_CASES:
        assert store.list_children(prefix) == expected, prefix


def test_list_info_sizes_and_times(store: Store) -> None:
    before = time.time()
    store.put("x/one", b"1")
    store.put("x/three", b"333")
    infos = store.list_info("x/")
    assert [(i.key, i.size) for i in infos] == [("x/one", 1), ("x/three", 3)]
    for info in infos:
        assert before - 5 < info.modified < time.time() + 5


def test_list_children_needs_a_folder_prefix(store: Store) -> None:
    with pytest.raises(BadInput):
        store.list_children("a")


def test_delete_and_delete_prefix(store: Store) -> None:
    for key in KEYS:
        store.put(key, b"x")
    store.delete("a/z")
    store.delete("a/z")  # deleting a missing key is fine
    assert not store.exists("a/z")
    assert store.delete_prefix("a/b/") == 2
    assert store.list() == ["a/bc/3", "z"]
    assert store.delete_prefix("nope/") == 0
    assert store.delete_prefix("") == 2
    assert store.list() == []
    store.put("a/b/1", b"again")  # folders pruned by the deletes come back on write
    assert store.get("a/b/1") == b"again"


# --- compare-and-swap ---------------------------------------------------------------------
def test_put_if_absent_then_match(store: Store) -> None:
    etag1 = store.put_if("m.json", b"v1", expected_etag=None)
    with pytest.raises(Conflict):
        store.put_if("m.json", b"other", expected_etag=None)  # present: "only if absent" fails
    etag2 = store.put_if("m.json", b"v2", expected_etag=etag1)
    assert store.get_with_etag("m.json") == (b"v2", etag2)
    with pytest.raises(Conflict) as info:
        store.put_if("m.json", b"stale", expected_etag=etag1)  # someone wrote since etag1
    assert info.value.status == 409
    assert store.get("m.json") == b"v2"


def test_put_if_on_missing_key_with_an_etag_conflicts(store: Store) -> None:
    etag = store.put("gone", b"1")
    store.delete("gone")
    with pytest.raises(Conflict):
        store.put_if("gone", b"2", expected_etag=etag)
    assert not store.exists("gone")


def test_concurrent_compare_and_swap_loses_no_increment(store: Store) -> None:
    """8 threads increment one counter through put_if; every increment must survive."""
    store.put_if("counter", b"0", expected_etag=None)
    threads, per_thread = 8, 6
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(per_thread):
                while True:
                    data, etag = store.get_with_etag("counter")
                    try:
                        store.put_if("counter", str(int(data) + 1).encode(), expected_etag=etag)
                        break
                    except Conflict:
                        continue
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert int(store.get("counter")) == threads * per_thread


# --- backend specifics ----------------------------------------------------------------------
def test_open_store_builds_without_touching_anything(settings: Settings, tmp_path: Path) -> None:
    local = open_store(settings)
    assert isinstance(local, LocalStore) and not settings.data_dir.exists()
    s3_settings = settings.model_copy(
        update={"storage": "s3", "s3_endpoint_url": "http://127.0.0.1:9", "s3_prefix": "p/"}
    )
    s3 = open_store(s3_settings)
    assert isinstance(s3, S3Store) and s3._client is None
    assert s3.config.bucket == settings.s3_bucket and s3.config.addressing_style == "path"


def test_local_store_refuses_a_key_under_an_object(local_root: Path) -> None:
    """S3 allows keys "a" and "a/b" together; a folder cannot: a clear Conflict, not a 503."""
    store = LocalStore(local_root)
    store.put("a", b"1")
    with pytest.raises(Conflict):
        store.put("a/b", b"2")
    store.put("c/d", b"3")
    with pytest.raises(Conflict):
        store.put("c", b"4")
    assert store.list() == ["a", "c/d"]


def test_local_store_hides_locks_and_leaves_no_temp_files(local_root: Path) -> None:
    store = LocalStore(local_root)
    etag = store.put_if("c/m.json", b"1", expected_etag=None)
    store.put_if("c/m.json", b"2", expected_etag=etag)
    store.put("c/d/x", b"3")
    assert store.list() == ["c/d/x", "c/m.json"]
    assert store.list_children("") == ["c"]
    files = sorted(p.relative_to(local_root).as_posix() for p in local_root.rglob("*"))
    assert not [f for f in files if f.endswith(".tmp")]
    assert (local_root / "c" / "m.json").read_bytes() == b"2"


def test_s3_store_keeps_keys_under_its_prefix(moto_s3: MotoS3) -> None:
    bucket = moto_s3.new_bucket()
    store = S3Store(
        S3Config(
            bucket=bucket,
            prefix="/tenant/a/",
            endpoint_url=moto_s3.endpoint_url,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            addressing_style="path",
        )
    )
    store.put("catalogs/x/manifest.json", b"{}")
    raw = moto_s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in raw] == ["tenant/a/catalogs/x/manifest.json"]
    assert store.list() == ["catalogs/x/manifest.json"]
    assert store.list_children("") == ["catalogs"]
    store.check()
    store.probe_conditional_writes()  # moto honours If-None-Match
    assert store.list() == ["catalogs/x/manifest.json"]  # the probe cleaned up


def _s3(endpoint: str, bucket: str = "sighting", **overrides: object) -> S3Store:
    config = S3Config(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        addressing_style="path",
        connect_timeout_s=0.5,
        read_timeout_s=0.5,
        max_attempts=1,
    )
    return S3Store(S3Config(**{**config.__dict__, **overrides}))


@contextmanager
def _port(listen: bool) -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections, or that accepts and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if listen:
        sock.listen(8)
    else:
        sock.close()
    try:
        yield port
    finally:
        sock.close()


S3_CALLS = {
    "get": lambda s: s.get("k"),
    "put": lambda s: s.put("k", b"1"),
    "put_if": lambda s: s.put_if("k", b"1", expected_etag=None),
    "list": lambda s: s.list(),
    "list_children": lambda s: s.list_children(""),
    "exists": lambda s: s.exists("k"),
    "delete": lambda s: s.delete("k"),
    "delete_prefix": lambda s: s.delete_prefix("a/"),
    "check": lambda s: s.check(),
}


@pytest.mark.parametrize(
    ("listen", "calls"),
    [
        (False, list(S3_CALLS)),  # connection refused: every call
        (True, ["get", "put_if", "list"]),  # accepts, never answers: read timeouts (slower)
    ],
    ids=["refused", "silent"],
)
def test_unreachable_s3_fails_fast_with_store_unavailable(listen: bool, calls: list[str]) -> None:
    with _port(listen) as port:
        store = _s3(f"http://127.0.0.1:{port}")
        for name in calls:
            start = time.perf_counter()
            with pytest.raises(StoreUnavailable) as info:
                S3_CALLS[name](store)
            elapsed = time.perf_counter() - start
            assert info.value.status == 503
            assert f"127.0.0.1:{port}" in info.value.message
            assert elapsed < 3.0, f"{name} took {elapsed:.1f} s"


def test_missing_bucket_is_store_unavailable(moto_s3: MotoS3) -> None:
    store = _s3(moto_s3.endpoint_url, bucket="no-such-bucket")
    for call in (lambda: store.get("k"), lambda: store.put("k", b"1"), store.check):
        with pytest.raises(StoreUnavailable):
            call()
    with pytest.raises(StoreUnavailable, match="does not exist"):
        store.put("k", b"1")


def test_local_store_on_a_broken_root_is_store_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "not-a-folder"
    root.write_bytes(b"a file where the store's folder should be")
    store = LocalStore(root)
    for call in (
        lambda: store.put("k", b"1"),
        lambda: store.put_if("k", b"1", expected_etag=None),
        lambda: store.delete("k"),
        store.check,
    ):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert str(root) in info.value.message or "'k'" in info.value.message
