"""view/follow.py: one Follower for every engine (terminal, pipe, json), fed by a polling loop or by an engine
that drives the migration itself (ViewEvents), and the glyphs a non-UTF-8 terminal gets."""
import io
import json

import pyte

from kubectl_vmmig import errors
from kubectl_vmmig import progress as P
from kubectl_vmmig.engines.base import progress_of
from kubectl_vmmig.view.follow import Follower, ViewEvents, style_for


def mig(pct, result="Running"):
    phase = {"Running": "Running", "Succeeded": "Succeeded", "Failed": "Failed"}[result]
    d = P.disk_row(vm="vm1", volume="rootdisk", source_pvc="vm1-rootdisk", target_pvc="vm1-rootdisk-fast",
                   mode="offline", phase=phase, progress=pct)
    return P.migration("vm1-to-fast", "ns", "kubevirt", "cutover", "WaitingForVolumes", result,
                       started="2025-06-01T10:00:00Z", disks=[d], step="WaitingForVolumes")


class Term(io.TextIOBase):
    """A terminal: isatty, a size, and a pyte screen behind it."""
    encoding = "utf-8"

    def __init__(self, columns=80, lines=24):
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.Stream(self.screen)

    def isatty(self):
        return True

    def fileno(self):
        raise OSError("no fd")

    def write(self, text):
        self.stream.feed(text.replace("\n", "\r\n"))
        return len(text)

    def rows(self):
        return [r.rstrip() for r in self.screen.display]


def test_an_engine_driving_the_migration_feeds_the_same_view(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    term, err, t = Term(), io.StringIO(), [0.0]
    follower = Follower(out=term, err=err, tty=True, clock=lambda: t[0])
    states = iter([[mig(20)], [mig(60)], [mig(100, "Succeeded")]])
    events = ViewEvents(follower, lambda name: next(states), min_interval=1.0, clock=lambda: t[0])
    report = progress_of(events)
    events("migration vm1-to-fast: record configmap/vm-storage-vm1-to-fast in ns")   # before any observation
    assert term.rows()[0].startswith("· migration vm1-to-fast")
    report("vm1-to-fast")
    rows = term.rows()
    assert rows[0].startswith("PLAN ns/vm1-to-fast") and not any("record configmap" in r for r in rows)
    events("vm1: WaitingForVolumes - waiting for vm1-rootdisk-fast CloneInProgress 20.00%")
    report("vm1-to-fast")            # within min_interval: no new read
    t[0] += 1.5
    report("vm1-to-fast")
    rows = term.rows()
    assert any("60%" in r for r in rows) and rows[-1] == "" and any(r.startswith("· vm1: Waiting") for r in rows)
    assert sum(r.startswith("PLAN ") for r in rows) == 1 and err.getvalue() == ""
    final = follower.run(lambda: next(states), wait=lambda s: None)
    text = "\n".join(term.rows())
    assert final[0]["result"] == "Succeeded" and "Succeeded: 1 of 1 disk(s) moved" in text
    assert text.count("PLAN ") == 1 and "· vm1:" not in text  # the last frame drops the engine's message


def test_not_a_terminal_engine_messages_are_stderr_lines_and_changes_stdout_lines():
    out, err = io.StringIO(), io.StringIO()
    follower = Follower(out=out, err=err, tty=False)
    events = ViewEvents(follower, lambda name: [mig(20)], min_interval=0)
    events("vm1: Stopping - stopping the VM for the offline copy")
    events.progress("vm1-to-fast")
    events.progress("vm1-to-fast")
    assert err.getvalue() == "vm1: Stopping - stopping the VM for the offline copy\n"
    assert out.getvalue().count("ns/vm1-to-fast vm1/rootdisk (offline): Running 20%") == 1
    assert "\x1b[" not in out.getvalue()


def test_a_lost_api_server_during_an_engine_pass_does_not_end_the_view():
    follower = Follower(out=io.StringIO(), err=io.StringIO(), tty=False)

    def fetch(name):
        raise errors.ConnectionFailed("cannot reach the API server")
    ViewEvents(follower, fetch, min_interval=0).progress("x")   # no exception: the engine's own call says so


def test_json_streams_one_document_per_change_and_the_summary_goes_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    states = iter([[mig(20)], [mig(20)], [mig(70)], [mig(100, "Succeeded")]])
    Follower(out=out, err=err, output="json", tty=True).run(lambda: next(states), wait=lambda s: None)
    docs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [d["migrations"][0]["disks"][0]["progressPercent"] for d in docs] == [20, 70, 100]
    assert "Succeeded: 1 of 1 disk(s) moved" in err.getvalue()


def test_non_utf8_terminal_gets_ascii():
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    ascii_ = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert not style_for(ascii_, tty=True).unicode and not style_for(latin, tty=True).unicode
    assert style_for(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), tty=True).unicode
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    out.isatty = lambda: True
    Follower(out=out, err=io.StringIO(), tty=True).run(iter([[mig(40)], [mig(100, "Succeeded")]]).__next__,
                                                       wait=lambda s: None)
    out.flush()
    text = out.buffer.getvalue().decode("ascii")   # nothing the locale cannot encode was written
    assert "##########" in text and "->" not in text.split("PLAN")[0]


def test_status_watch_knows_disk_sizes_from_one_pvc_list():
    from kubectl_vmmig.commands.status import LiveSource

    class Kube:
        calls = []

        def items(self, res, ns=None, all_namespaces=False, **kw):
            self.calls.append(res.kind)
            if res.kind == "PersistentVolumeClaim":
                return [{"metadata": {"namespace": "ns", "name": "vm1-rootdisk"},
                         "status": {"capacity": {"storage": "10Gi"}}},
                        {"metadata": {"namespace": "ns", "name": "other"},
                         "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]
            return []

    kube = Kube()
    watching = LiveSource(kube, "ns", False, vm_cache_seconds=30)
    watching._vm_list()
    [m] = watching._with_sizes([mig(50)])
    assert m["disks"][0]["_sizeBytes"] == 10 << 30 and kube.calls.count("PersistentVolumeClaim") == 1
    watching._vm_list()   # cached with the VMs: no second LIST within the refresh period
    assert kube.calls.count("PersistentVolumeClaim") == 1
    once = LiveSource(Kube(), "ns", False, vm_cache_seconds=0)
    once._vm_list()
    assert "_sizeBytes" not in once._with_sizes([mig(50)])[0]["disks"][0]   # a one-shot status lists no PVCs


def test_a_fleet_in_json_is_one_document_per_namespace_migration_that_changed():
    def fleet(a, b, result_b="Running"):
        one, two = mig(a, "Succeeded" if a == 100 else "Running"), mig(b, result_b)
        two["namespace"] = "ns2"
        return [one, two]

    out, err = io.StringIO(), io.StringIO()
    states = iter([fleet(20, 10), fleet(20, 50), fleet(100, 50), fleet(100, 100, "Succeeded")])
    Follower(out=out, err=err, output="json", tty=False).run(lambda: next(states), wait=lambda s: None)
    docs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert all(len(d["migrations"]) == 1 for d in docs)  # the shape of a one-namespace run
    seen = [(d["migrations"][0]["namespace"], d["migrations"][0]["disks"][0]["progressPercent"]) for d in docs]
    assert seen == [("ns", 20), ("ns2", 10), ("ns2", 50), ("ns", 100), ("ns2", 100)]
