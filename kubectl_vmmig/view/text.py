"""Text primitives of the view (pure): what the stream can show, shortening, colour, bars, sizes.

Widths are counted in characters: Kubernetes names are DNS labels (ASCII) and the glyphs used here (block
elements, arrow, ellipsis) are one cell wide. Colour is added after padding, so escapes never count.
"""
import re
from typing import Optional

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# SGR colour per phase or result (https://no-color.org: the caller decides whether colour is on at all).
PHASE_COLORS = {"Succeeded": "32", "Completed": "32", "Failed": "31", "Interrupted": "31", "Canceled": "33",
                "Retrying": "33", "Running": "36", "Migrating": "36", "Pending": "2", "Skipped": "2",
                "NotStarted": "2"}
_EIGHTHS = " ▏▎▍▌▋▊▉"


class Style:
    """What the output can show: unicode glyphs (else ASCII), colour (else plain)."""

    def __init__(self, unicode: bool = True, color: bool = False):
        self.unicode, self.color = unicode, color
        self.ellipsis = "…" if unicode else "..."
        self.arrow = " → " if unicode else " -> "

    def paint(self, text: str, phase: Optional[str]) -> str:
        code = PHASE_COLORS.get(phase or "")
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code and text.strip() else text


ASCII = Style(unicode=False)


def visible(text: str) -> int:
    return len(ESCAPES.sub("", text))


def one_line(text) -> str:
    return " ".join(str(text or "").split())


def shorten(text: str, width: int, style: Style, where: str = "end") -> str:
    """``text`` in at most ``width`` characters; the cut is marked with an ellipsis, at the end (sentences) or
    in the middle (names: their suffix, e.g. ``-mig-x7bq`` or ``-fast``, is what tells them apart)."""
    text = one_line(text)
    if len(text) <= width:
        return text
    e = style.ellipsis
    if width <= len(e):
        return text[:width]
    keep = width - len(e)
    if where == "mid":
        head = (keep + 1) // 2
        return text[:head] + e + text[len(text) - (keep - head):] if keep - head else text[:head] + e
    return text[:keep] + e


def bar(percent: Optional[float], width: int, style: Style) -> str:
    """A progress bar of exactly ``width`` cells (eighth blocks on UTF-8, ``#``/``-`` otherwise)."""
    if width <= 0:
        return ""
    p = 0.0 if percent is None else max(0.0, min(100.0, float(percent)))
    if not style.unicode:
        full = int(round(width * p / 100.0))
        return "#" * full + "-" * (width - full)
    eighths = int(round(width * 8 * p / 100.0))
    full, part = divmod(eighths, 8)
    out = "█" * full + (_EIGHTHS[part] if part and full < width else "")
    return out + "·" * (width - len(out))


def percent_text(percent: Optional[float]) -> str:
    if percent is None:
        return "-"
    return f"{percent:.0f}%" if percent == int(percent) or percent >= 10 else f"{percent:.1f}%"


def size_text(n: Optional[float]) -> str:
    """Bytes in binary units as ``kubectl`` users read quantities: 512 MiB, 1.5 GiB."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} PiB"


def fit_line(text: str, width: Optional[int], style: Style) -> str:
    """One plain line cut to the width (never wrapped by the terminal)."""
    return text if width is None or len(text) <= width else shorten(text, width, style)
