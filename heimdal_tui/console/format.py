"""How the console writes numbers, times and network-derived text.

Every string that may have come from the network (hostnames, DNS names, peers, summaries with
them in) is put on screen through :func:`plain`, a Rich Text that is never parsed as markup; the
engine escaped control characters on entry, and :func:`plain` escapes any left (an operator's label
typed with a stray escape, a remote daemon of another version).
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from heimdal_tui.common.text import safe_text

SEVERITY_LABEL = {"critical": "CRIT", "high": "HIGH", "medium": "MED", "low": "LOW"}
# Shapes as well as colours: a colour-blind operator still tells severities apart.
SEVERITY_MARK = {"critical": "■", "high": "▲", "medium": "◆", "low": "·"}
STATE_LABEL = {"open": "open", "acknowledged": "ack", "resolved": "res", "false_positive": "fp"}
BLOCKS = " ▁▂▃▄▅▆▇█"


def plain(text: object, limit: int = 1000, style: str = "") -> Text:
    """``text`` as literal characters: no markup, no control sequences, at most ``limit`` long."""
    return Text(safe_text(str(text), limit) if text is not None else "", style=style, no_wrap=True)


def rate(bytes_per_second: float) -> str:
    return bytes_(bytes_per_second) + "/s"


def bytes_(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def count(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,.0f}"


def clock(ts: float | None) -> str:
    """Capture time as HH:MM:SS UTC."""
    if ts is None:
        return "--:--:--"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def stamp(ts: float | None) -> str:
    """Capture time as YYYY-MM-DD HH:MM:SS UTC."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float | None, now: float | None) -> str:
    """How long before ``now`` (capture time) ``ts`` was: 5s, 3m, 2h, 4d."""
    if ts is None or now is None:
        return "-"
    seconds = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def spark(values: tuple[float, ...] | list[float], width: int) -> str:
    """The last ``width`` values as a one-line bar chart scaled to their maximum."""
    tail = list(values)[-width:] if width > 0 else []
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return BLOCKS[1] * len(tail)
    last = len(BLOCKS) - 1
    return "".join(BLOCKS[max(1, round(v / top * last))] if v > 0 else BLOCKS[1] for v in tail)


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def speed(value: float | None) -> str:
    return "max" if value is None else f"{value:g}×"
