"""When to try again: exponential backoff with jitter, and the server's own Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

# A Retry-After longer than this is taken as this: a confused server must not silence a sensor for days.
RETRY_AFTER_MAX = 3600.0


@dataclass
class Backoff:
    """Delay after the n-th consecutive failure: ``initial * 2**(n-1)``, capped at ``maximum``,
    of which a random half is waived ("equal jitter": never less than half the step, so the delay
    still grows, while sensors that failed together do not all come back at the same instant)."""

    initial: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random)

    def step(self, failures: int) -> float:
        """The delay before jitter."""
        exponent = min(max(failures, 1) - 1, 60)
        return min(self.maximum, self.initial * (2.0**exponent))

    def delay(self, failures: int) -> float:
        step = self.step(failures)
        return step / 2.0 + self.rng.uniform(0.0, step / 2.0)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent
    or unreadable. Bounded to 0..RETRY_AFTER_MAX."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)
