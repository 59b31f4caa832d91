"""The stream client (`streamclient`) against a fake service on 127.0.0.1 implementing the
streams contract.

POST /v1/catalogs/<id>/streams/<stream_id>/frames?frame_index=&top_k= (raw JPEG) answers one
detection with a track id and a match; DELETE .../streams/<stream_id> answers 204. Each test
scripts the fake's status codes and delay, and checks what the client sent and wrote.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np
import pytest

from streamclient import client as stream_client
from streamclient.cli import main
from streamclient.drawing import draw_rows, track_color
from streamclient.pacing import Pacer
from streamclient.sources import Frame, LatestFrameReader, SourceError

ROOT = Path(__file__).resolve().parents[2]
W, H, FPS, N = 64, 48, 20.0, 20
BOX = [5.0, 5.0, 20.0, 15.0]  # in the pixels of the image the fake receives


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class FakeService:
    """What the fake answers (``status(request_number, frame_index)``) and what it received."""

    url: str = ""
    delay_s: float = 0.0
    status: Callable[[int, int], int] = lambda n, i: 200
    requests: list[Request] = field(default_factory=list)

    @property
    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def deletes(self) -> list[Request]:
        return [r for r in self.requests if r.method == "DELETE"]


def _handler(fake: FakeService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real service

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, body: dict | None, headers: dict | None = None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Request:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            url = urlparse(self.path)
            req = Request(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
            fake.requests.append(req)
            return req

        def do_DELETE(self):
            self._record()
            self._reply(204, None)

        def do_POST(self):
            req = self._record()
            parts = req.path.split("/")  # '', v1, catalogs, id, streams, sid, frames
            index = int(req.query["frame_index"][0])
            time.sleep(fake.delay_s)
            status = fake.status(len(fake.posts) - 1, index)
            if status != 200:
                error = {"status": status, "code": "x", "message": f"fake {status}", "details": {}}
                headers = {"Retry-After": "0"} if status == 503 else {}
                return self._reply(status, {"error": error}, headers)
            match = {"item_id": "arla-milk", "similarity": 0.8, "inliers": 40}
            detection = {
                "track_id": 7,
                "box": BOX,
                "class": "bottle",
                "confidence": 0.9,
                "matches": [
                    {**match, "item_id": "oatly", "verified": False, "score": 0.2},
                    {**match, "verified": True, "score": 0.95},
                ],
                "verified_now": index == 0,
            }
            answer = {"stream_id": parts[5], "frame_index": index, "detections": [detection]}
            self._reply(200, {**answer, "timings": {"detect": 1.0}})

    return Handler


@pytest.fixture()
def fake():
    fake = FakeService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # polls its shutdown flag every 50 ms (the default 0.5 s was half a second per test)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """N frames of W x H at FPS, each a different grey with a coloured square moving."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(N):
        frame = np.full((H, W, 3), 40 + 8 * i, np.uint8)
        frame[20:30, 2 * i : 2 * i + 10] = (0, 0, 255)
        writer.write(frame)
    writer.release()
    return path


def run_client(fake: FakeService, source, tmp_path: Path, *extra: str, quiet: bool = True) -> int:
    args = [str(source), "--url", fake.url, "--catalog", "cat1", "--stream-id", "cam1"]
    args += ["--quiet"] if quiet else []
    return main([*args, "--backoff", "0.01", "--retries", "2", *extra])


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_help_runs_as_module_without_torch():
    out = subprocess.run(
        [sys.executable, "-m", "streamclient", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "--stream-id" in out.stdout and "--realtime" in out.stdout
    check = (
        "import sys, streamclient.cli; "
        "print('torch' in sys.modules, any(m.split('.')[0] == 'api' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False False", out.stderr  # no torch, nothing of the server


def test_imports_nothing_of_the_server():
    """The client is its own package: no module of it imports the server package ``api``."""
    for path in (ROOT / "streamclient").glob("*.py"):
        text = path.read_text()
        assert "from api" not in text and "import api" not in text, path.name


def test_file_every_frame(fake, video, tmp_path, capsys):
    out, video_out = tmp_path / "r.jsonl", tmp_path / "out" / "v.mp4"
    extra = ["--out", str(out), "--video-out", str(video_out), "--max-side", "32"]
    assert run_client(fake, video, tmp_path, *extra, "--api-key", "k1", "--top-k", "2") == 0
    printed = capsys.readouterr()

    # every frame sent in order as a JPEG downscaled to max side 32, on the contract's route
    assert [int(r.query["frame_index"][0]) for r in fake.posts] == list(range(N))
    first = fake.posts[0]
    assert first.path == "/v1/catalogs/cat1/streams/cam1/frames"
    assert first.query["top_k"] == ["2"] and first.headers["X-API-Key"] == "k1"
    assert first.headers["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(first.body, np.uint8), cv2.IMREAD_COLOR).shape == (24, 32, 3)
    # the stream is deleted at the end, once
    assert [r.path for r in fake.deletes] == ["/v1/catalogs/cat1/streams/cam1"]
    assert fake.requests[-1].method == "DELETE"

    rows = read_lines(out)
    assert [r["frame_index"] for r in rows] == list(range(N))
    row = rows[3]
    assert row["time_s"] == pytest.approx(3 / FPS, abs=1e-3)
    assert row["track_id"] == 7 and row["class"] == "bottle"
    assert row["box"] == [2 * v for v in BOX]  # mapped back to source pixels
    assert (row["item"], row["score"], row["verified"]) == ("arla-milk", 0.95, True)  # best
    assert rows[0]["verified_now"] and not row["verified_now"]

    assert count_frames(video_out) == N
    cap = cv2.VideoCapture(str(video_out))
    _, drawn = cap.read()
    source = cv2.VideoCapture(str(video))
    _, plain = source.read()
    x1, y1, x2, _ = (int(2 * v) for v in BOX)
    edge = np.abs(drawn[y1, x1:x2].astype(int) - plain[y1, x1:x2].astype(int)).mean()
    assert edge > 40  # the box is drawn on the frame

    assert f"{N} read, {N} sent, 0 dropped, 0 failed" in printed.out
    assert f"arla-milk x{N} (1 track)" in printed.out


def test_stride_skips_but_video_keeps_every_frame(fake, video, tmp_path, capsys):
    video_out = tmp_path / "v.mp4"
    extra = ["--stride", "5", "--video-out", str(video_out)]
    assert run_client(fake, video, tmp_path, *extra, quiet=False) == 0
    assert [int(r.query["frame_index"][0]) for r in fake.posts] == [0, 5, 10, 15]
    printed = capsys.readouterr()
    assert "4 sent, 0 dropped, 0 failed, 16 skipped" in printed.out
    assert "fps sent" in printed.err and "4 matches" in printed.err  # the progress line
    assert count_frames(video_out) == N


@pytest.mark.parametrize(
    ("realtime", "delay_s", "min_dropped", "max_dropped"),
    [
        (["--realtime"], 0.12, 5, N - 1),  # server 2.4x slower than 20 fps: about 11 dropped
        (["--realtime"], 0.0, 0, 2),  # fast server: paced to the fps, (almost) nothing dropped
        ([], 0.03, 0, 0),  # no realtime: every frame, however slow
    ],
)
def test_realtime_drops_frames_for_a_slow_server(
    fake, video, tmp_path, capsys, realtime, delay_s, min_dropped, max_dropped
):
    fake.delay_s = delay_s
    out, video_out = tmp_path / "r.jsonl", tmp_path / "v.mp4"
    t0 = time.monotonic()
    rc = run_client(
        fake, video, tmp_path, *realtime, "--out", str(out), "--video-out", str(video_out)
    )
    elapsed = time.monotonic() - t0
    assert rc == 0
    sent = [int(r.query["frame_index"][0]) for r in fake.posts]
    assert sent == sorted(set(sent)) and sent[0] == 0
    assert min_dropped <= N - len(sent) <= max_dropped
    assert sorted({r["frame_index"] for r in read_lines(out)}) == sent
    assert f"{N} read, {len(sent)} sent, {N - len(sent)} dropped" in capsys.readouterr().out
    assert count_frames(video_out) == N  # dropped frames are written with the last boxes
    if realtime:  # kept pace with the file: neither faster nor falling behind
        assert N / FPS - 0.1 < elapsed < N / FPS + 1.0


@pytest.mark.parametrize(
    ("status", "rc", "message", "sent", "deleted"),
    [
        # another client owns the stream id: stop, and leave its stream alone
        (lambda n, i: 409, 1, "409 fake 409 (the stream id is in use", 0, False),
        # unknown catalog
        (lambda n, i: 404, 1, "404 fake 404 (check --catalog", 0, False),
        # busy for the first 3 frames (Retry-After 0): those are dropped, the rest sent
        (lambda n, i: 503 if n < 3 else 200, 0, "", N - 3, True),
        # one frame the server will not take: counted failed, stream goes on
        (lambda n, i: 422 if i == 4 else 200, 0, "frame 4 refused: 422", N - 1, True),
        # a broken server: bounded retries, then a clean stop
        (lambda n, i: 500, 1, "server error 500", 0, True),
        # a server that recovers within the retries loses nothing (sequential mode resends)
        (lambda n, i: 500 if n in (2, 3) else 200, 0, "retry 2/2", N, True),
    ],
)
def test_server_errors(fake, video, tmp_path, capsys, status, rc, message, sent, deleted):
    fake.status = status
    assert run_client(fake, video, tmp_path) == rc
    printed = capsys.readouterr()
    assert message in printed.err
    assert "Traceback" not in printed.err + printed.out
    assert f" {sent} sent" in printed.out
    assert bool(fake.deletes) == deleted
    if sent == N - 3:
        assert "3 dropped" in printed.out


def test_connection_refused(video, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    argv = [str(video), "--url", f"http://127.0.0.1:{port}", "--catalog", "c", "--quiet"]
    assert main([*argv, "--retries", "2", "--backoff", "0.01"]) == 1
    printed = capsys.readouterr()
    assert "cannot reach" in printed.err and "Traceback" not in printed.err
    assert "0 sent" in printed.out


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such file"),  # no file
        (lambda tmp: tmp / "notes.mp4", "cannot open source"),  # a text file named .mp4
    ],
)
def test_bad_source_exits_2(fake, tmp_path, capsys, make_source, message):
    (tmp_path / "notes.mp4").write_text("not a video\n" * 20)
    assert run_client(fake, make_source(tmp_path), tmp_path) == 2
    printed = capsys.readouterr()
    assert message in printed.err and "Traceback" not in printed.err
    assert fake.requests == []


@pytest.mark.parametrize(
    ("arrivals", "expected", "sleeps"),
    [
        # clock when frame i is offered, at 10 fps (frame i is due at i / 10 s)
        ([0.0, 0.05, 0.2], [True, True, True], [0.05]),  # early: wait for it
        ([0.0, 0.25, 0.26, 0.31], [True, False, True, True], []),  # frame 1 late: dropped
        ([0.0, 0.55, 0.55, 0.55, 0.55, 0.55], [True, False, False, False, False, True], []),
        ([1.0, 1.0, 1.25], [True, True, True], [0.1]),  # the first frame sets the origin
    ],
)
def test_pacer(arrivals, expected, sleeps):
    now = iter(arrivals)
    slept: list[float] = []
    pacer = Pacer(10.0, clock=lambda: next(now), sleep=slept.append)
    assert [pacer.should_send(i) for i in range(len(arrivals))] == expected
    assert [s for s in slept if s > 1e-9] == pytest.approx([s for s in sleeps if s > 0])


class FakeCamera:
    """A live source: ``n`` frames, one every ``period_s``, then a failed read."""

    def __init__(self, n: int, period_s: float = 0.002):
        self.n, self.period_s, self.i = n, period_s, 0

    def read(self):
        time.sleep(self.period_s)
        if self.i >= self.n:
            return False, None
        self.i += 1
        if self.i == 3:
            return True, np.zeros((0, 0, 3), np.uint8)  # a corrupt frame
        return True, np.full((8, 8, 3), self.i, np.uint8)

    def release(self):
        pass

    def get(self, prop):
        return 0.0

    def isOpened(self):
        return True

    def set(self, *args):
        return True


def test_latest_frame_reader_drops_and_reconnects():
    opened = []

    def reopen():
        if opened:
            raise SourceError("camera gone")
        opened.append(1)
        return FakeCamera(40)

    reader = LatestFrameReader(reopen, retries=2, backoff_s=0.01).start(FakeCamera(40))
    taken: list[Frame] = []
    while (frame := reader.get(timeout=1.0)) is not None:
        taken.append(frame)
        time.sleep(0.02)  # a consumer 10x slower than the camera
    reader.stop()
    assert reader.read == 78 and reader.corrupt == 2  # both captures, corrupt frames skipped
    assert reader.reconnects == 1 and reader.lost and reader.error == "camera gone"
    assert reader.dropped > 0 and len(taken) + reader.dropped == reader.read
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and indices[-1] == 77  # always the newest


def test_live_source_keeps_only_the_latest_frame(fake, tmp_path, capsys, monkeypatch):
    """A camera index runs the reader thread; a slow server makes it drop, video keeps all."""
    opened = []

    def open_once(source):  # the camera opens, then is gone for good
        if opened:
            raise SourceError("camera gone")
        opened.append(source)
        return FakeCamera(30, 0.005)

    monkeypatch.setattr(stream_client, "open_capture", open_once)
    fake.delay_s = 0.03
    video_out, out = tmp_path / "v.mp4", tmp_path / "r.jsonl"
    rc = run_client(fake, "0", tmp_path, "--video-out", str(video_out), "--out", str(out))
    printed = capsys.readouterr()
    assert rc == 1 and "lost source" in printed.err  # the fake camera ends with failed reads
    sent = len(fake.posts)
    assert 0 < sent < 29 and len(read_lines(out)) == sent
    assert f"29 read, {sent} sent, {29 - sent} dropped, 0 failed, 0 skipped, 1 corrupt" in (
        printed.out
    )
    assert opened == [0] and fake.deletes and count_frames(video_out) == 29


def test_ctrl_c_deletes_the_stream_and_summarises(fake, video, tmp_path, capsys, monkeypatch):
    encode = stream_client.encode_jpeg

    def interrupted_at_5(image, quality, max_side):
        if len(fake.posts) == 5:
            raise KeyboardInterrupt
        return encode(image, quality, max_side)

    monkeypatch.setattr(stream_client, "encode_jpeg", interrupted_at_5)
    assert run_client(fake, video, tmp_path) == 0
    printed = capsys.readouterr()
    assert "stopped by Ctrl-C" in printed.out and "5 sent" in printed.out
    assert fake.requests[-1].method == "DELETE" and len(fake.posts) == 5


def test_draw_rows_marks_confirmations_and_keeps_labels_inside():
    image = np.zeros((120, 240, 3), dtype=np.uint8)
    rows = [
        {
            "box": [200, 0, 239, 60],
            "track_id": 3,
            "item": "long-item",
            "score": 0.9,
            "verified": True,
        },
        {"box": [10, 60, 70, 119], "track_id": 4, "item": "other", "score": 0.3, "verified": False},
    ]
    out = draw_rows(image, rows)
    assert not image.any()  # drawn on a copy
    assert out[0:12, 120:200].any()  # the right box's label moved left, inside the frame
    # confirmed: a 2 px box; unconfirmed: 1 px (this frame's line width is 1)
    assert out[59:61, 205:235].any(axis=2).all() and not out[57, 205:235].any()
    assert out[118, 20:60].any(axis=-1).all() and not out[117, 20:60].any()


def test_track_colour_is_the_drawing_modules_label_colour_as_bgr():
    from detection.draw import label_color

    r, g, b = label_color("7")
    assert track_color("7") == (b, g, r)
