"""Faults the reference server injects, each counted over the /v1 requests it sees, in this order:

1. ``drop_first`` N: the first N requests get their connection closed without an answer;
2. ``fail_first`` N: the next N get ``fail_status`` (with ``Retry-After: retry_after`` when set);
3. ``lose_response_first`` N: the first N metadata batches are stored, then the connection is
   closed without an answer (the sensor cannot know they arrived: the idempotency key has to save
   the day);
4. ``slow`` S: metadata batches are answered S seconds late, after they were stored (only the
   first ``slow_first`` batches when that is set): a sender can die while Asgard holds its batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    fail_first: int = 0
    fail_status: int = 503
    retry_after: float | None = None
    drop_first: int = 0
    lose_response_first: int = 0
    slow: float = 0.0
    slow_first: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seen: int = 0
    _lost: int = 0
    _batches: int = 0

    def next_request(self) -> tuple[int, str | None]:
        """Count a request; (its number, the fault for it: "drop", "fail" or None)."""
        with self._lock:
            self._seen += 1
            n = self._seen
        if n <= self.drop_first:
            return n, "drop"
        if n <= self.drop_first + self.fail_first:
            return n, "fail"
        return n, None

    def lose_this_response(self) -> bool:
        with self._lock:
            if self._lost < self.lose_response_first:
                self._lost += 1
                return True
            return False

    def batch_delay(self) -> float:
        """Seconds to hold the answer to the metadata batch just stored."""
        with self._lock:
            self._batches += 1
            n = self._batches
        if self.slow <= 0 or (self.slow_first and n > self.slow_first):
            return 0.0
        return self.slow
