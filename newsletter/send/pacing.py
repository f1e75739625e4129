"""Rate limits per transport: messages per second (a token bucket) and per sliding hour (a window)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

HOUR = 3600.0


class RateLimiter:
    """Blocks `acquire(n)` until n more messages fit both limits; 0 means no limit."""

    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.per_second = float(per_second)
        self.per_hour = int(per_hour)
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._tokens = max(self.per_second, 1.0)
        self._stamp = clock()
        self._window: deque[tuple[float, int]] = deque()  # (time, messages) within the last hour
        self._in_window = 0

    def acquire(self, n: int = 1) -> float:
        """Wait until `n` messages may go; returns the seconds waited."""
        with self._lock:
            waited = self._hour(n) if self.per_hour else 0.0
            if self.per_second:
                waited += self._second(n)
            return waited

    def _second(self, n: int) -> float:
        now = self.clock()
        capacity = max(self.per_second, 1.0)
        self._tokens = min(capacity, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now
        # A batch larger than the bucket goes into debt and waits it off: the rate holds on average.
        self._tokens -= n
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.per_second
        self.sleep(wait)
        self._tokens = 0.0
        self._stamp = self.clock()
        return wait

    def _hour(self, n: int) -> float:
        waited = 0.0
        while True:
            now = self.clock()
            while self._window and self._window[0][0] <= now - HOUR:
                self._in_window -= self._window.popleft()[1]
            if self._in_window + n <= self.per_hour or not self._window:
                break
            # Wait until the oldest entry leaves the window, then look again.
            wait = self._window[0][0] + HOUR - now
            self.sleep(wait)
            waited += wait
        self._window.append((self.clock(), n))
        self._in_window += n
        return waited


_LIMITERS: dict[tuple[str, float, int], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(transport: str, per_second: float, per_hour: int) -> RateLimiter:
    """The process-wide limiter of one transport (shared by the worker and in-process sends)."""
    key = (transport, float(per_second), int(per_hour))
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(per_second, per_hour)
        return _LIMITERS[key]
