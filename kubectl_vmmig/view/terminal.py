"""The terminal writer: redraws the frame in place (the view's only terminal I/O).

- Exact line accounting: every frame line is at most the terminal width (the layout guarantees it), so
  the frame occupies exactly one row per line; the next redraw goes back that many rows, rewrites each
  row after erasing it, and clears whatever is below (a shorter frame leaves no stale line).
- No flicker, no torn frame: a whole frame is built as one string and written with one ``write``, inside a
  synchronized update (DEC private mode 2026, BSU/ESU: kitty, WezTerm, iTerm2, foot, Windows Terminal, tmux
  3.4+ show the frame only once it is complete, however the pty splits the bytes; others ignore the mode).
- Resize: SIGWINCH re-lays the last frame at once from the cached state (no API call). After a
  narrowing, terminals that reflow (tmux, VTE, iTerm2) split the old rows, so the rows to go back are
  counted at the new width; on terminals that do not reflow (xterm) this may also erase a few lines
  just above the view, never leave a stale copy of it.
- Messages while the view is shown (``note``) are printed above it, then the frame is redrawn.
"""
import math
import os
import signal
from typing import Callable, List, Optional

HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"
SYNC_BEGIN, SYNC_END = "\x1b[?2026h", "\x1b[?2026l"


def terminal_size(stream) -> tuple:
    """(columns, lines) of the terminal behind ``stream``: the tty itself first (COLUMNS from a shell is
    stale after a resize), then $COLUMNS/$LINES, then 80x24."""
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns > 0 and size.lines > 0:
            return size.columns, size.lines
    except (AttributeError, ValueError, OSError):
        pass
    try:
        return int(os.environ.get("COLUMNS") or 80), int(os.environ.get("LINES") or 24)
    except ValueError:
        return 80, 24


class LiveScreen:
    """``show(layout)`` with ``layout(columns, lines) -> [line]``; redrawn on every call and on resize."""

    def __init__(self, out, size: Optional[Callable[[], tuple]] = None):
        self.out = out
        self.size = size or (lambda: terminal_size(out))
        self.layout: Optional[Callable[[int, int], List[str]]] = None
        self.drawn: List[int] = []      # visible length of each row of the frame on screen
        self.drawn_width = 0
        self._busy = self._again = False
        self._old_handler, self._depth = None, 0

    # ---- resize ------------------------------------------------------------------------------------------
    def __enter__(self):
        self._depth += 1
        if self._depth == 1 and hasattr(signal, "SIGWINCH"):
            try:
                self._old_handler = signal.signal(signal.SIGWINCH, self._on_resize)
            except ValueError:  # not the main thread: resizes are picked up at the next refresh
                self._old_handler = None
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0 and self._old_handler is not None:
            signal.signal(signal.SIGWINCH, self._old_handler)
            self._old_handler = None
        return False

    def _on_resize(self, signum, frame):
        if self.layout is not None:
            self.redraw()

    # ---- drawing -----------------------------------------------------------------------------------------
    def rows_on_screen(self, width: int) -> int:
        """Rows the frame on screen takes now (more than its lines after a narrowing that reflowed)."""
        if width >= self.drawn_width:
            return len(self.drawn)
        return sum(max(1, math.ceil(n / max(1, width))) for n in self.drawn)

    def show(self, layout: Callable[[int, int], List[str]]) -> None:
        self.layout = layout
        self.redraw()

    def redraw(self) -> None:
        if self._busy:            # a resize while a frame is being built: build it again afterwards
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                self._draw_once()
                if not self._again:
                    break
        finally:
            self._busy = False

    def _draw_once(self):
        from .text import visible

        columns, lines = self.size()
        frame = self.layout(columns, lines)
        buf = [SYNC_BEGIN, HIDE, "\r"]
        up = min(self.rows_on_screen(columns), max(0, lines - 1)) if self.drawn else 0
        if up:
            buf.append(f"\x1b[{up}A")
        for line in frame:
            buf.append("\x1b[2K" + line + "\n")   # erase the row, then write: no stale tail
        buf.append("\x1b[J" + SHOW + SYNC_END)      # and nothing below the new frame
        self.out.write("".join(buf))
        self.out.flush()
        self.drawn = [visible(ln) for ln in frame]
        self.drawn_width = columns

    def note(self, message: str) -> None:
        """Print a message where the frame is, then the frame again below it."""
        buf = [SYNC_BEGIN, "\r"]
        up = min(self.rows_on_screen(self.size()[0]), max(0, self.size()[1] - 1)) if self.drawn else 0
        if up:
            buf.append(f"\x1b[{up}A")
        buf.append("\x1b[J" + message.rstrip("\n") + "\n" + SYNC_END)
        self.out.write("".join(buf))
        self.out.flush()
        self.drawn = []
        if self.layout is not None:
            self.redraw()
