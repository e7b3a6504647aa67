"""render.py: tables, json/yaml contract output, NO_COLOR, and follow() (changes, redraw, reconnect, Ctrl-C)."""
import io
import json

import pytest
import yaml

from kubectl_vmmig import errors, render
from kubectl_vmmig import progress as P


def mig(result="Running", phase="Running", pct=50, elapsed="1m0s", message="", **kw):
    d = P.disk_row(vm="vm-0", volume="rootdisk", source_pvc="pvc-0", target_pvc="pvc-0-mig-x7bq", source_sc="standard",
                   target_sc="fast", mode="live", phase=phase, progress=pct, rate="10MB/s", elapsed=elapsed,
                   attempt=kw.pop("attempt", None), message=message, inspect="kubectl describe dvm x")
    return P.migration("plan-a", "ns", "mtc", "cutover", "WaitForDirectVolumeMigrationToComplete", result,
                       started="2025-06-01T10:03:30Z", disks=[d], step="DirectVolume: Running (Step: 32/38)",
                       warnings=kw.pop("warnings", []), errors=kw.pop("errors", []), inspect="kubectl describe mm")


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_json_and_yaml_are_the_contract_only():
    ms = [mig()]
    doc = json.loads(render.render(ms, "json"))
    assert doc == P.document(ms)
    assert "_step" not in json.dumps(doc) and "_inspect" not in json.dumps(doc)
    assert doc["migrations"][0]["disks"][0]["progressPercent"] == 50
    assert yaml.safe_load(render.render(ms, "yaml")) == doc


def test_table_has_header_overall_line_and_narrow_columns():
    text = render.render([mig(message="x" * 100)], "table")
    first, total, heads = text.splitlines()[:3]
    for part in ("PLAN ns/plan-a", "ENGINE mtc", "TYPE cutover", "STEP DirectVolume: Running (Step: 32/38)",
                 "RESULT Running", "ELAPSED "):
        assert part in first
    assert total.startswith("DISKS 0/1 done") and "50%" in total and "ETA ~1m0s" in total
    assert heads.split() == ["VM", "VOLUME", "MODE", "PHASE", "PROGRESS", "ETA", "PVC", "MESSAGE"]
    row = text.splitlines()[3]
    assert "pvc-0 → pvc-0-mig-x7bq" in row and "50%" in row and "live" in row
    assert "~1m0s" in row  # 50% in 1m -> about 1m left, marked as an estimate
    assert "x" * 100 not in text and "…" in row
    assert "█" not in text  # no bar into a pipe
    wide = render.render([mig(message="x" * 100)], "wide")
    assert "x" * 100 in wide
    for col in ("SOURCE PVC", "TARGET PVC", "SOURCE SC", "TARGET SC", "RATE", "ELAPSED", "ATTEMPT"):
        assert col in wide.splitlines()[2]
    assert "standard" in wide and "10MB/s" in wide


def test_failed_disk_is_named_and_errors_warnings_shown():
    m = mig(result="Failed", phase="Failed", pct=None, message="rsync failed after 20 attempts",
            warnings=["DirectVolumeMigrationBlocked: slow"], errors=["direct volume migration failed"])
    text = render.render([m], "table")
    assert "failed: disk vm-0/rootdisk (pvc-0 → pvc-0-mig-x7bq): rsync failed after 20 attempts" in text
    assert "warning: DirectVolumeMigrationBlocked: slow" in text and "error: direct volume migration failed" in text
    assert "~" not in text.splitlines()[3]  # no ETA for a finished disk


def test_no_color_and_tty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert render.use_color(TTY()) and not render.use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not render.use_color(TTY())
    out = TTY()
    render.show([mig(result="Succeeded", phase="Succeeded", pct=100)], out=out)
    assert "\x1b[" not in out.getvalue()


def test_show_empty_says_so_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    render.show([], "table", out=out, err=err, namespace="ns")
    assert out.getvalue() == "" and "No migrations found in namespace ns." in err.getvalue()
    render.show([], "json", out=out, err=err)
    assert json.loads(out.getvalue()) == {"migrations": []}


def _seq(*items):
    it = iter(items)

    def fetch():
        x = next(it)
        if isinstance(x, BaseException):
            raise x
        return x
    return fetch


def test_follow_non_tty_prints_one_line_per_change_and_returns_final():
    final = mig(result="Succeeded", phase="Succeeded", pct=100)
    out, err = io.StringIO(), io.StringIO()
    got = render.follow(_seq([mig(pct=10)], [mig(pct=10)], [mig(pct=60)], [final]), out=out, err=err, tty=False,
                        wait=lambda s: None)
    assert got == [final]
    text = out.getvalue()
    disk_lines = [ln for ln in text.splitlines() if ln.startswith("ns/plan-a vm-0/rootdisk")]
    assert len(disk_lines) == 3  # 10%, 60%, Succeeded: the repeated 10% printed once
    assert "Running 10%" in disk_lines[0] and "Succeeded 100%" in disk_lines[2]
    assert "RESULT Succeeded" in text  # final table
    assert "\x1b[" not in text


def test_follow_tty_redraws_in_place():
    out = TTY()
    render.follow(_seq([mig(pct=10)], [mig(result="Succeeded", phase="Succeeded", pct=100)]), out=out,
                  err=io.StringIO(), tty=True, wait=lambda s: None)
    text = out.getvalue()
    assert text.count("PLAN ns/plan-a") == 3  # two frames and the final redraw, each over the one before
    assert text.count("\x1b[2A") == 0 and "A\x1b[2K" in text and "\x1b[J" in text
    assert "moved" in text and "kubectl delete dv,pvc -n ns pvc-0" in text  # the summary and the next step


def test_follow_json_prints_a_document_per_change():
    out = io.StringIO()
    render.follow(_seq([mig(pct=10)], [mig(pct=10)], [mig(result="Failed", phase="Failed")]), out=out,
                  output="json", tty=False, err=io.StringIO(), wait=lambda s: None)
    docs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [d["migrations"][0]["result"] for d in docs] == ["Running", "Failed"]


def test_follow_reconnects_then_resumes():
    err, t = io.StringIO(), [0.0]
    down = errors.ConnectionFailed("cannot reach the API server at https://x (refused)")
    done = mig(result="Succeeded", phase="Succeeded", pct=100)

    def sleep(s):
        t[0] += s
    got = render.follow(_seq([mig()], down, down, [done]), out=io.StringIO(), err=err, tty=False,
                        wait=lambda s: None, sleep=sleep, clock=lambda: t[0])
    assert got == [done]
    assert err.getvalue().count("reconnecting…") == 1 and "reconnected" in err.getvalue()


def test_follow_gives_up_after_bounded_time():
    t = [0.0]
    down = errors.ConnectionFailed("cannot reach the API server")

    def fetch():
        raise down

    def sleep(s):
        t[0] += s
    with pytest.raises(errors.ConnectionFailed) as exc:
        render.follow(fetch, out=io.StringIO(), err=io.StringIO(), tty=False, reconnect_timeout=120,
                      sleep=sleep, clock=lambda: t[0])
    assert "lost the API server" in exc.value.message and 120 <= t[0] < 200


def test_ctrl_c_stops_watching_only():
    with pytest.raises(errors.Interrupted) as exc:
        render.follow(_seq([mig()], KeyboardInterrupt()), out=io.StringIO(), err=io.StringIO(), tty=False,
                      wait=lambda s: None)
    assert "goes on in the cluster" in exc.value.message
    assert exc.value.exit_code == errors.INTERRUPTED


def test_follow_stall_warning_names_object():
    t = [0.0]
    err = io.StringIO()

    def wait(s):
        t[0] += 400
    fetch = _seq([mig(pct=10)], [mig(pct=10)], [mig(pct=10)], [mig(result="Canceled", phase="Canceled", pct=10)])
    render.follow(fetch, out=io.StringIO(), err=err, tty=False, stall_after=600, wait=wait, clock=lambda: t[0])
    assert err.getvalue().count("warning: no progress on vm-0/rootdisk") == 1
    assert "kubectl describe dvm x" in err.getvalue()
