"""A webhook receiver on 127.0.0.1 (http.server in a thread): try a watch locally, and test.

    python -m watches.receiver --port 8765 --secret SECRET

prints every alert POSTed to it with whether its signature is right (the watch's ``secret``,
shown when the watch was created). In tests and ``bench.watch`` it is started in-process:

It can refuse to exist for a while (``down_for``: the first N POSTs get a closed connection),
answer 500 (``fail_for``), hang (``hang``: until released), or be slow (``delay_s``). It checks
each POST's signature with the watch's secret and keeps the alerts it accepted by alert id, as
a real receiver would (a repeat is answered 200 and not counted twice).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from watches.webhook import ALERT_HEADER, SIGNATURE_HEADER, verify_signature


class Receiver:
    """Start with ``with Receiver() as r:``; ``r.url`` is its address."""

    def __init__(self, secret: str = "", *, down_for: int = 0, fail_for: int = 0,
                 delay_s: float = 0.0, hang: bool = False, port: int = 0) -> None:  # fmt: skip
        self.secret = secret
        self.down_for, self.fail_for = down_for, fail_for
        self.delay_s = delay_s
        self.release = threading.Event()
        if not hang:
            self.release.set()
        self.posts: list[dict] = []  # every POST that reached the handler
        self.accepted: dict[str, dict] = {}  # alert id -> body, first accepted copy
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    n = len(receiver.posts)
                    receiver.posts.append(
                        {"at": time.time(), "alert_id": self.headers.get(ALERT_HEADER)}
                    )
                if n < receiver.down_for:
                    self.close_connection = True
                    self.connection.close()  # no answer at all: "down"
                    return
                receiver.release.wait(600)
                time.sleep(receiver.delay_s)
                if n < receiver.down_for + receiver.fail_for:
                    self.send_response(500)
                    self.end_headers()
                    return
                ok = verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
                if not ok:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                alert = json.loads(body)["alert"]
                with receiver.lock:
                    receiver.accepted.setdefault(alert["id"], alert | {"received_at": time.time()})
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    """``python -m watches.receiver``: print the alerts POSTed to it until Ctrl-C."""
    import argparse

    from core import cli

    parser = argparse.ArgumentParser(
        prog="python -m watches.receiver",
        description="A local webhook receiver: checks the signature, prints each alert once.",
        epilog=cli.EXIT_STATUS,
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1")
    parser.add_argument("--secret", required=True, help="the watch's secret")
    args = parser.parse_args(argv)
    receiver = Receiver(args.secret, port=args.port)
    print(f"listening on {receiver.url} (Ctrl-C stops)", flush=True)
    shown: set[str] = set()
    with receiver:
        try:
            while True:
                time.sleep(0.5)
                with receiver.lock:
                    new = [a for a in receiver.accepted.values() if a["id"] not in shown]
                    bad = receiver.bad_signatures
                for alert in new:
                    shown.add(alert["id"])
                    print(
                        f"alert {alert['id']} signature ok: {alert['watched']['item_id']} "
                        f"(catalog {alert['watched']['catalog_id']}) seen as "
                        f"{alert['source']['item_id']} (catalog {alert['source']['catalog_id']}) "
                        f"score={alert['score']:.3f} verified={alert['verified']}",
                        flush=True,
                    )
                if bad:
                    print(f"{bad} POST(s) with a wrong signature refused (401)", flush=True)
                    with receiver.lock:
                        receiver.bad_signatures = 0
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
