"""Progress of a prediction run on stderr: a tqdm bar with images/s on a terminal (when tqdm is
installed), else a plain line every :data:`INTERVAL` seconds (logs, CI, pipes)."""
from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

__all__ = ["Progress", "INTERVAL"]

# Seconds between two plain progress lines.
INTERVAL = 10.0


class Progress:
    """Counts predicted and skipped images out of ``total`` and shows the rate."""

    def __init__(self, total: int, stream: Optional[TextIO] = None, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.skipped = 0
        self._stream = stream or sys.stderr
        self._start = time.perf_counter()
        self._last = self._start
        self._bar: Any = None
        self._enabled = enabled and total > 0
        if self._enabled and getattr(self._stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, file=self._stream, unit="img", leave=False, dynamic_ncols=True)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start

    @property
    def rate(self) -> float:
        """Images (predicted or skipped) per second so far."""
        return (self.done + self.skipped) / max(self.seconds, 1e-9)

    def update(self, done: int, skipped: int = 0) -> None:
        self.done += done
        self.skipped += skipped
        if self._bar is not None:
            self._bar.update(done + skipped)
            if skipped:
                self._bar.set_postfix(skipped=self.skipped)
            return
        now = time.perf_counter()
        if self._enabled and now - self._last >= INTERVAL:
            self._last = now
            print(f"pyconv predict: {self.done + self.skipped}/{self.total} images, {self.rate:.1f} images/s"
                  + (f", {self.skipped} skipped" if self.skipped else ""), file=self._stream, flush=True)

    def write(self, line: str) -> None:
        """A message that must not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
