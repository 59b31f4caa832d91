"""The counters of one run and the summary printed at its end."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Summary:
    """Counters of one run: ``read == sent + dropped + failed + skipped`` (+1 if interrupted)."""

    stream_id: str = ""
    read: int = 0  # frames decoded from the source
    sent: int = 0  # frames answered 200 by the server
    dropped: int = 0  # read but not sent, to keep up (pacing, newer frame, server busy)
    failed: int = 0  # sent without an answer (connection, 5xx, per-frame 4xx)
    skipped: int = 0  # left out by --stride
    corrupt: int = 0  # unreadable frames skipped
    reconnects: int = 0  # source reopened after a drop
    detections: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    items: Counter = field(default_factory=Counter)  # verified detections per item
    tracks: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    stopped_by: str = "end of source"
    exit_code: int = 0
    deleted: bool = False

    @property
    def matches(self) -> int:
        return sum(self.items.values())

    def latency(self, q: float) -> float:
        """The q-th percentile of the round-trip latency in ms (nan before any answer)."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def text(self) -> str:
        """The human-readable summary printed at the end."""
        fps = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        items = ", ".join(
            f"{item} x{n} ({len(self.tracks[item])} track{'s' * (len(self.tracks[item]) != 1)})"
            for item, n in self.items.most_common()
        )
        return "\n".join(
            [
                f"stream {self.stream_id}: {self.elapsed_s:.1f} s, stopped by {self.stopped_by}",
                f"frames: {self.read} read, {self.sent} sent, {self.dropped} dropped, "
                f"{self.failed} failed, {self.skipped} skipped, {self.corrupt} corrupt, "
                f"{self.reconnects} reconnects; {fps:.1f} frames/s sent",
                f"latency: p50 {self.latency(50):.0f} ms, p95 {self.latency(95):.0f} ms",
                f"detections: {self.detections}; matched items: {items or 'none'}",
            ]
        )
