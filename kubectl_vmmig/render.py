"""The only place that prints migration tables, JSON and YAML (one snapshot), and follows progress.

- ``render(migrations, output)`` -> text for ``-o table|wide|json|yaml``; json/yaml print exactly the
  ``{"migrations": [...]}`` contract (render hints starting with ``_`` are dropped). Tables are the
  view's layout (view/layout.py): at the terminal's width on a TTY, at natural width into a pipe.
- ``follow(fetch, ...)``: the live view / one line per change / one document per change (view/follow.py);
  returns the final Migration list so callers map the result to an exit code.
Colour only on a TTY, never when NO_COLOR is set (https://no-color.org) or TERM=dumb.
"""
import json
import sys
import time
from typing import Callable, List, Optional

from . import errors
from . import progress as P
from .view import layout
from .view.follow import Follower, can_encode, style_for, use_color, use_tty  # noqa: F401 (re-exported)
from .view.text import ASCII, Style

OUTPUTS = ("table", "wide", "json", "yaml")


def header(m: dict) -> str:
    """One line: plan, engine, type, current step, result (the table's title), at natural width."""
    return layout.header(m, None, ASCII)


def render(migrations: List[dict], output="table", color=False, tracker: Optional[P.Tracker] = None,
           now: Optional[float] = None, width: Optional[int] = None, style: Optional[Style] = None) -> str:
    """Text for one snapshot (no trailing newline)."""
    if output == "json":
        return json.dumps(P.document(migrations), indent=2)
    if output == "yaml":
        import yaml

        return yaml.safe_dump(P.document(migrations), sort_keys=False, allow_unicode=True).rstrip("\n")
    if output not in OUTPUTS:
        raise errors.BadInput(f"unknown output format {output!r}", f"use one of {', '.join(OUTPUTS)}")
    style = style or Style(unicode=can_encode("→…█▏·"), color=color)
    eta = (lambda m, d: tracker.eta(m, d, now)) if tracker is not None else None
    stalls = (lambda m: tracker.stalls([m], now)) if tracker is not None else None
    return "\n".join(layout.frame(migrations, width, None, style, wide=output == "wide", now=time.time(),
                                  eta=eta, stalls=stalls))


def empty_message(namespace: Optional[str], all_namespaces=False, name=None) -> str:
    where = "any namespace" if all_namespaces or not namespace else f"namespace {namespace}"
    what = f"No migration of {name!r}" if name else "No migrations"
    return f"{what} found in {where}."


def show(migrations, output="table", out=None, err=None, namespace=None, all_namespaces=False, name=None):
    """Print one snapshot; for tables an empty result says so on stderr (like kubectl get)."""
    from .view.terminal import terminal_size

    out = out or sys.stdout
    err = err or sys.stderr
    if not migrations and output in ("table", "wide"):
        err.write(empty_message(namespace, all_namespaces, name) + "\n")
        return
    width = terminal_size(out)[0] if use_tty(out) else None
    out.write(render(migrations, output, width=width, style=style_for(out)) + "\n")
    out.flush()


def follow(fetch: Callable[[], List[dict]], out=None, output="table", interval=2.0, tty=None,
           stall_after=600.0, reconnect_timeout=None, err=None, wait: Optional[Callable[[float], None]] = None,
           clock=time.monotonic, sleep=time.sleep, follower: Optional[Follower] = None) -> List[dict]:
    """Follow ``fetch()`` until every migration ended; return the final Migration list ([] when none).

    ``wait(interval)`` blocks until the next refresh; default: sleep. ``follower``: one already fed by an
    engine (the kubevirt engine's --wait), so the same view goes on to the end.
    """
    follower = follower or Follower(out=out, err=err, output=output, tty=tty, stall_after=stall_after, clock=clock)
    return follower.run(fetch, interval=interval, reconnect_timeout=reconnect_timeout, wait=wait, sleep=sleep)
