"""Following migrations (``status -w``, ``migrate --wait``): one ``Follower`` for every engine.

- A terminal with ``-o table|wide``: the live view (layout.frame) redrawn in place (terminal.LiveScreen).
- Not a terminal: one line per change (as ``kubectl get -w``), then the final table.
- ``-o json``: one JSON document per change, one per line (like ``kubectl get -w -o json``); ``yaml``:
  documents separated by ``---``.
- At the end (tables): the summary and the next step (summary.summary).

``step(migrations)`` takes one observation, so an engine that drives the migration itself (the kubevirt
engine's ``--wait``) feeds the same view through a callback; ``run(fetch)`` is the polling loop with the
bounded reconnect. Engine messages (``event``) are part of the view on a terminal, stderr lines otherwise.
"""
import json
import os
import sys
import time
from typing import Callable, List, Optional

from .. import errors
from .. import progress as P
from . import layout, summary
from .text import Style, one_line, shorten

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def use_tty(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def use_color(stream) -> bool:
    """Colour only on a TTY, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    return use_tty(stream)


def can_encode(text: str, stream=None) -> bool:
    try:
        text.encode(getattr(stream or sys.stdout, "encoding", None) or "utf-8")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def style_for(stream, tty: Optional[bool] = None) -> Style:
    """UTF-8 glyphs when the stream can encode them (a non-UTF-8 locale gets ASCII), colour on a TTY."""
    tty = use_tty(stream) if tty is None else tty
    return Style(unicode=can_encode("→…█▏·", stream), color=tty and use_color(stream))


def change_lines(migrations, style: Style) -> dict:
    """key -> one-line description of everything that may change; used to print only changes."""
    lines = {}
    if layout.is_fleet(migrations):  # several namespaces: their queued/running/done counts change too
        lines[("f",)] = layout.fleet_line(migrations, None, style)
    for m in migrations:
        where = f"{m.get('namespace')}/{m.get('plan')}"
        lines[("m", where)] = (f"{where} {m.get('engine')} {m.get('type')}: {m.get('_step') or m.get('phase')} "
                               f"[{m.get('result')}]")
        for d in m.get("disks") or []:
            p = d.get("progressPercent")
            bits = [d["phase"], "-" if p is None else f"{p}%"]
            bits += [d[k] for k in ("transferRate", "elapsed") if d.get(k)]
            if d.get("attempt") is not None:
                bits.append(f"attempt {d['attempt']}")
            if d.get("message"):
                bits.append(shorten(d["message"], 120, style))
            lines[("d", where, d["vm"], d["volume"], d["sourcePVC"])] = \
                f"{where} {d['vm'] or '-'}/{d['volume'] or d['sourcePVC']} ({d['mode']}): " + " ".join(bits)
    return lines


class Follower:
    def __init__(self, out=None, err=None, output="table", tty=None, stall_after=600.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 enrich: Optional[Callable[[List[dict]], List[dict]]] = None):
        from .terminal import LiveScreen

        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.output, self.clock, self.wall = output, clock, wall
        tty = use_tty(self.out) if tty is None else tty
        self.style = style_for(self.out, tty)
        self.screen = LiveScreen(self.out) if tty and output in ("table", "wide") else None
        self.tracker = P.Tracker(stall_after=stall_after)
        self.enrich = enrich or (lambda ms: ms)
        self.printed, self.warned, self.last_doc = {}, set(), None
        self.migrations: List[dict] = []
        self.event = ""
        self.durations, self._began = {}, {}

    def __enter__(self):
        """While entered, a resize of the terminal re-lays the view at once (SIGWINCH)."""
        if self.screen is not None:
            self.screen.__enter__()
        return self

    def __exit__(self, *exc):
        if self.screen is not None:
            self.screen.__exit__(*exc)
        return False

    # ---- what the engines and the loop report ------------------------------------------------------------
    def note(self, message: str) -> None:
        """A message for the person watching (reconnecting, warnings): above the live view, else stderr."""
        if self.screen is not None and self.screen.drawn:
            self.screen.note(message)
        else:
            self.err.write(message + "\n")
            self.err.flush()

    def on_event(self, message: str) -> None:
        """An engine's progress message: on a terminal the view's last line (alone until the first
        observation: a status line, fitted like the rest), a stderr line otherwise."""
        if self.screen is not None:
            self.event = message
            self.screen.show(self._frame)
        else:
            self.err.write(message + "\n")
            self.err.flush()

    # ---- one observation -----------------------------------------------------------------------------------
    def _frame(self, columns, lines):
        now = self.clock()
        return layout.frame(self.migrations, columns, lines, self.style, wide=self.output == "wide",
                            now=self.wall(), eta=lambda m, d: self.tracker.eta(m, d, now),
                            stalls=lambda m: self.tracker.stalls([m], now), event=self.event)

    def _durations(self, ms, now):
        for m in ms:
            for d in m.get("disks") or []:
                key = (m.get("namespace"), m.get("plan"), d.get("vm"), d.get("volume"))
                if d.get("phase") not in P.TERMINAL_DISK_PHASES:
                    self._began.setdefault(key, now)
                elif key in self._began and key not in self.durations:
                    self.durations[key] = now - self._began[key]

    def step(self, migrations: List[dict]) -> bool:
        """Show one observation; True once every migration ended (or there is none)."""
        ms = self.enrich(list(migrations))
        if ms and not self.migrations:
            self.event = ""  # what the engine said while creating its objects: the view now shows them
        now = self.clock()
        self.tracker.observe(ms, now)
        self._durations(ms, now)
        self.migrations = ms
        if self.output in ("json", "yaml"):
            # a fleet: one document per namespace's migration that changed (the shape of a one-namespace run)
            docs = [((m.get("namespace"), m.get("plan")), P.document([m])) for m in ms] if layout.is_fleet(ms) \
                else [(None, P.document(ms))]
            last = self.last_doc if isinstance(self.last_doc, dict) else {}
            for key, doc in docs:
                if doc != last.get(key):
                    self._document(doc)
            self.last_doc = dict(docs)
        elif self.screen is not None:
            if ms:
                self.screen.show(self._frame)
            else:
                self.screen.show(lambda c, r: ["No migrations found."])
        else:
            state = change_lines(ms, self.style)
            for key, line in state.items():
                if self.printed.get(key) != line:
                    self.out.write(line + "\n")
            self.printed = state
            for s in self.tracker.stalls(ms, now):
                if s.split(" for ")[0] not in self.warned:
                    self.warned.add(s.split(" for ")[0])
                    self.err.write(f"warning: {s}\n")
            self.out.flush()
        return P.ended(ms) or not ms

    def _document(self, doc) -> None:
        if self.output == "json":
            text = json.dumps(doc)
        else:
            import yaml

            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).rstrip("\n") + "\n---"
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self) -> None:
        """After the end: the final table (not a terminal), the summary and the next step."""
        ms = self.migrations
        if not ms:
            return
        if self.screen is not None:
            self.event = ""
            self.screen.redraw()
            width = self.screen.size()[0]
        else:
            width = None
        lines = summary.summary(ms, now=self.wall(), durations=self.durations, width=width, style=self.style)
        if self.output in ("json", "yaml"):
            self.err.write("\n".join(lines) + "\n")
            self.err.flush()
            return
        if self.screen is None:
            text = "\n\n".join("\n".join(layout.frame([m], None, None, self.style, self.output == "wide",
                                                      now=self.wall())) for m in ms)
            self.out.write("\n" + text + "\n")
        self.out.write("\n" + "\n".join(lines) + "\n")
        self.out.flush()

    # ---- the polling loop ----------------------------------------------------------------------------------
    def run(self, fetch: Callable[[], List[dict]], interval=2.0, reconnect_timeout=None,
            wait: Optional[Callable[[float], None]] = None, sleep=time.sleep) -> List[dict]:
        """Follow ``fetch()`` until every migration ended; return the final Migration list ([] if none).
        Ctrl-C stops watching only. A lost API server (or 5xx while it restarts) is retried for a bounded
        time (KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT, default 120s), anything else is raised."""
        if reconnect_timeout is None:
            reconnect_timeout = float(os.environ.get("KUBECTL_VM_STORAGE_RECONNECT_TIMEOUT") or 120.0)
        wait = wait or sleep
        down_since, backoff = None, 1.0
        try:
            with self:
                while True:
                    try:
                        ms = fetch()
                    except errors.ApiError as exc:
                        # Lost, or back but not ready yet (a restarting API server answers 503/500 for a while).
                        # Anything else (403, 404, 422) is a real answer: stop.
                        if not (isinstance(exc, errors.ConnectionFailed) or exc.status in TRANSIENT_STATUSES):
                            raise
                        now = self.clock()
                        if down_since is None:
                            down_since = now
                            self.note(f"reconnecting{self.style.ellipsis if self.style.unicode else '...'} "
                                      f"({one_line(exc.message)})")
                        if now - down_since >= reconnect_timeout:
                            raise errors.ConnectionFailed(
                                f"lost the API server for {P.go_duration(now - down_since)}: {exc.message}",
                                hint="the migration goes on in the cluster; run 'status -w' again once it is "
                                     "reachable")
                        sleep(backoff)
                        backoff = min(backoff * 2, 15.0)
                        continue
                    if down_since is not None:
                        self.note("reconnected")
                        down_since, backoff = None, 1.0
                    if self.step(ms):
                        self.finish()
                        return self.migrations
                    wait(interval)
        except KeyboardInterrupt:
            raise errors.Interrupted("stopped watching; the migration goes on in the cluster",
                                     hint="follow it again with 'kubectl vm-storage status -w'") from None


class ViewEvents:
    """The ``events`` an engine's ``apply`` gets while this view follows it (engines/base.progress_of):
    messages go to the view, and after each of the engine's passes the view re-reads (at most once per
    ``min_interval``) and redraws. ``fetch(migration)`` -> Migration dicts."""

    def __init__(self, follower: Follower, fetch: Callable[[str], List[dict]], min_interval=1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.follower, self.fetch, self.min_interval, self.clock = follower, fetch, min_interval, clock
        self._last = None
        self.latest: Optional[List[dict]] = None  # the last migrations an engine showed (show)

    def __call__(self, message: str) -> None:
        self.follower.on_event(message)

    def show(self, migrations: List[dict]) -> None:
        """An engine that holds the migrations already (a fleet's passes: engines/base.py ``apply_fleet``)
        hands them over: redrawn at most once per ``min_interval``, no read of its own."""
        self.latest = migrations
        now = self.clock()
        if self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        self.follower.step(migrations)

    def progress(self, migration: str) -> None:
        now = self.clock()
        if self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        try:
            ms = self.fetch(migration)
        except errors.ApiError:
            return  # the engine's own next call meets the same problem and says so; the view just waits
        self.follower.step(ms)
