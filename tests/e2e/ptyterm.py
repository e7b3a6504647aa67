"""The plugin in a real pseudo-terminal, its output rendered by a terminal emulator (pyte).

``PtyRun(argv, env, columns, lines)`` forks the command on a new pty (its controlling terminal, so a
resize sends it SIGWINCH as a real terminal would) with the window size set before exec. The emulator
screen is wider than the window (``EMULATOR_COLUMNS``): a line the plugin writes wider than the window
would show here as a row longer than the window instead of being cut, so "no line wider than the
terminal" is something a test can see fail.

The terminal honours synchronized updates (DEC private mode 2026, as kitty, WezTerm, iTerm2, foot and tmux 3.4+
do): while the plugin is inside one, the screen a test sees (``rows``, ``snapshots``) stays the last complete
one - a frame the pty delivered in several reads is never seen half drawn.
"""
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import threading
import time

import pyte

EMULATOR_COLUMNS = 400
SYNC_BEGIN, SYNC_END = b"\x1b[?2026h", b"\x1b[?2026l"


def _winsize(fd, columns, lines):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))


class PtyRun:
    def __init__(self, argv, env, columns=80, lines=24):
        self.columns, self.lines = columns, lines
        self.screen = pyte.Screen(EMULATOR_COLUMNS, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.lock = threading.Lock()
        self.snapshots = []   # (monotonic time, window columns, rows) for every change seen
        self.in_sync = False  # inside a synchronized update: the screen shown is self.settled
        self.settled = [""] * lines
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal and stdin/stdout/stderr
            try:
                _winsize(0, columns, lines)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.status = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            with self.lock:
                self.raw += data
                self._feed(bytes(data))

    def _feed(self, data):
        """Feed one read to the emulator, cut after each mode-2026 marker: every completed frame is a snapshot,
        even when the lines printed after it in the same read scroll it away at once."""
        while data:
            cuts = [i + len(SYNC_END) for i in (data.find(SYNC_BEGIN), data.find(SYNC_END)) if i >= 0]
            cut = min(cuts) if cuts else len(data)
            piece, data = data[:cut], data[cut:]
            self.stream.feed(piece)
            if piece.endswith((SYNC_BEGIN, SYNC_END)):
                self.in_sync = piece.endswith(SYNC_BEGIN)
            elif not data:  # a marker split across two reads: the last one in the tail of the raw bytes decides
                tail = self.raw[-(len(piece) + len(SYNC_BEGIN)):]
                begin, end = tail.rfind(SYNC_BEGIN), tail.rfind(SYNC_END)
                if begin != end:
                    self.in_sync = begin > end
            if not self.in_sync:
                rows = self.settled = [ln.rstrip() for ln in self.screen.display]
                if not self.snapshots or self.snapshots[-1][2] != rows:
                    self.snapshots.append((time.monotonic(), self.columns, rows))

    def _exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def rows_locked(self):
        return list(self.settled)

    def rows(self):
        with self.lock:
            return self.rows_locked()

    def resize(self, columns, lines):
        """What a terminal does when its window changes: new size on the pty (the kernel sends SIGWINCH)."""
        with self.lock:
            self.columns, self.lines = columns, lines
            self.screen.resize(lines, EMULATOR_COLUMNS)
            _winsize(self.fd, columns, lines)

    def wait_for(self, pred, timeout=120, what="screen"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rows = self.rows()
            if pred(rows):
                return rows
            if self._exited() and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; screen:\n" + "\n".join(self.rows()))

    def wait(self, timeout=300):
        end = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() > end:
                self.kill()
                raise AssertionError("the plugin did not end; screen:\n" + "\n".join(self.rows()))
            time.sleep(0.1)
        self._reader.join(5)
        return os.waitstatus_to_exitcode(self.status)

    def kill(self):
        if not self._exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = 0

    def close(self):
        self.kill()
        try:
            os.close(self.fd)
        except OSError:
            pass
