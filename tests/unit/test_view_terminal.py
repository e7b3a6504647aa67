"""view/terminal.py in a terminal emulator (pyte): what is on the screen after redraws, shrinking frames and
resizes. The bytes go through the same ONLCR translation a tty applies ("\\n" -> "\\r\\n")."""
import pyte
import pytest

from kubectl_vmmig import progress as P
from kubectl_vmmig.view import layout as L
from kubectl_vmmig.view.terminal import LiveScreen
from kubectl_vmmig.view.text import Style


class Term:
    """A pyte screen behind a file-like object (as a tty with ONLCR would feed it)."""

    def __init__(self, columns, lines):
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.Stream(self.screen)
        self.writes = 0
        self.texts = []

    def write(self, text):
        self.writes += 1
        self.texts.append(text)
        self.stream.feed(text.replace("\n", "\r\n"))

    def flush(self):
        pass

    def size(self):
        return self.screen.columns, self.screen.lines

    def rows(self):
        return [ln.rstrip() for ln in self.screen.display]


def migration(pct, n=3, result="Running"):
    disks = [P.disk_row(vm=f"vm-{i}", volume="rootdisk", source_pvc=f"vm-{i}-rootdisk", target_pvc=f"vm-{i}-rootdisk-fast",
                        mode="live", phase="Running" if pct < 100 else "Succeeded", progress=pct, message="copying " * 9)
             for i in range(n)]
    return P.migration("plan-a", "ns", "kubevirt", "cutover", "Migrating", result, started="2025-06-01T10:00:00Z",
                       disks=disks, step="Migrating")


def draw(screen, ms, style=Style(unicode=True)):
    screen.show(lambda c, r: L.frame(ms, c, r, style, now=P.parse_time("2025-06-01T10:01:00Z").timestamp()))


@pytest.mark.parametrize("columns,lines", [(80, 24), (200, 50), (50, 20)])
def test_redraws_in_place_one_write_per_frame_no_stale_lines(columns, lines):
    term = Term(columns, lines)
    term.stream.feed("$ kubectl vm-storage status -w\r\n")
    screen = LiveScreen(term, size=term.size)
    for pct in (0, 10, 40, 90):
        before = term.writes
        draw(screen, [migration(pct)])
        assert term.writes == before + 1           # a whole frame in one write: no flicker
        # ... inside a synchronized update (mode 2026): a terminal that honours it never shows it half drawn
        assert term.texts[-1].startswith("\x1b[?2026h") and term.texts[-1].endswith("\x1b[?2026l")
        assert term.texts[-1].count("\x1b[?2026") == 2
    rows = term.rows()
    assert rows[0] == "$ kubectl vm-storage status -w"  # what was above the view is untouched
    assert sum(r.startswith("PLAN ") for r in rows) == 1
    assert sum(r.startswith("vm-") for r in rows) == 3 and any("90%" in r for r in rows)
    # a shorter frame (one disk) leaves nothing of the longer one below it
    draw(screen, [migration(95, n=1)])
    rows = term.rows()
    assert sum(r.startswith("vm-") for r in rows) == 1 and rows[1].startswith("PLAN ")
    assert all(r == "" for r in rows[1 + len(screen.drawn):])


def test_a_frame_taller_than_the_terminal_is_clipped_and_never_scrolls():
    term = Term(80, 10)
    screen = LiveScreen(term, size=term.size)
    for pct in (10, 20, 30):
        draw(screen, [migration(pct, n=20)])
    rows = term.rows()
    assert sum(r.startswith("PLAN ") for r in rows) == 1 and "more line(s)" in rows[8]
    assert term.screen.cursor.y == 9


def test_resize_narrower_and_wider_relays_the_view():
    term = Term(200, 30)
    screen = LiveScreen(term, size=term.size)
    draw(screen, [migration(30)])
    wide_head = [r for r in term.rows() if r.startswith("VM ")][0]
    assert "MESSAGE" in wide_head and "PVC" in wide_head
    term.screen.resize(30, 80)
    screen.redraw()   # what the SIGWINCH handler does
    rows = term.rows()
    head = [r for r in rows if r.startswith("VM ")]
    assert len(head) == 1 and "PVC" not in head[0]             # re-laid for 80 columns, not cut
    assert sum(r.startswith("PLAN ") for r in rows) == 1
    assert all(len(r) <= 80 for r in rows)
    assert sum(r.startswith("vm-") for r in rows) == 3
    term.screen.resize(30, 200)
    screen.redraw()
    rows = term.rows()
    assert sum(r.startswith("PLAN ") for r in rows) == 1 and "PVC" in [r for r in rows if r.startswith("VM ")][0]


def test_note_prints_above_the_view_and_keeps_it_whole():
    term = Term(80, 24)
    screen = LiveScreen(term, size=term.size)
    draw(screen, [migration(10)])
    screen.note("reconnecting… (connection refused)")
    rows = term.rows()
    assert rows[0] == "reconnecting… (connection refused)" and rows[1].startswith("PLAN ")
    assert sum(r.startswith("PLAN ") for r in rows) == 1
