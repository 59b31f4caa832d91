"""The stream client: send a video file, an RTSP/HTTP stream or a camera to a running
Sighting service, frame by frame, and record what it finds.

    python -m streamclient VIDEO|URL|CAMERA_INDEX --url http://127.0.0.1:8000 \\
        --catalog CID --stream-id cam1 [--out results.jsonl] [--video-out out.mp4]

Each frame is sent as JPEG to ``POST /v1/catalogs/<id>/streams/<stream_id>/frames`` over one
keep-alive session; at the end (or Ctrl-C) ``DELETE /v1/catalogs/<id>/streams/<stream_id>``
ends the stream on the server and a summary is printed. The client keeps up with its source by
dropping frames rather than falling behind:

- live sources (URLs, cameras) with ``--realtime`` (their default): a reader thread keeps only
  the latest frame; frames overwritten before they could be sent are dropped;
- files with ``--realtime``: sending is paced to the file's fps; frames already late when the
  previous answer came back are dropped;
- otherwise (files by default): every ``--stride``-th frame is sent, in order.

A standalone client: it talks to the service over HTTP only and imports nothing of the server
(`api`); it reads answers with the service's own serialiser (`matching.report.client_rows`) and
draws with `detection.draw`'s colours. Light on purpose: OpenCV, NumPy, requests and tqdm (no
torch, no model code).

Modules: `sources` (files, URLs, cameras; JPEG encoding; the latest-frame reader), `pacing`
(realtime pacing of files), `session` (the HTTP session and its error handling), `drawing`
(boxes on frames, the annotated video), `summary` (the run's counters), `client` (the loop),
`cli` (the command line).

Exit codes: 0 done (end of source, ``--max-frames`` or Ctrl-C), 1 stopped by the server or a
lost source/connection, 2 bad source, option or output path.
"""
