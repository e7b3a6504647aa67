"""view/layout.py and view/summary.py: the pure layout at many widths (no terminal, no cluster)."""
import pytest

from kubectl_vmmig import progress as P
from kubectl_vmmig.view import layout as L
from kubectl_vmmig.view import summary as S
from kubectl_vmmig.view.text import ESCAPES, Style, bar, shorten, visible

UTF8, ASCII, COLOR = Style(unicode=True), Style(unicode=False), Style(unicode=True, color=True)
NOW = P.parse_time("2025-06-01T10:07:30Z").timestamp()


def disk(vm, volume, phase="Running", pct=None, size=None, **kw):
    d = P.disk_row(vm=vm, volume=volume, source_pvc=f"{vm}-{volume}", target_pvc=f"{vm}-{volume}-mig-x7bq",
                   source_sc="standard", target_sc="fast-replicated-ssd", mode=kw.pop("mode", "live"), phase=phase,
                   progress=pct, **kw)
    if size:
        d["_sizeBytes"] = size
    return d


def big(result="Running", **kw):
    disks = [disk("rhel9-database-primary-0", "rootdisk", pct=10, size=10 << 30, elapsed="1m0s",
                  message="DirectVolume: rsync transfer of the volume is running on node worker-3"),
             disk("rhel9-database-primary-0", "data-volume-with-a-long-name", pct=55, size=20 << 30, elapsed="4m0s"),
             disk("web", "rootdisk", phase="Pending", size=5 << 30),
             disk("web", "data", phase="Succeeded", pct=100, size=1 << 29, mode="offline", elapsed="30s")]
    disks += kw.pop("extra", [])
    return P.migration("vm-storage-plan", "production-databases", "mtc", "cutover", "x", result,
                       started="2025-06-01T10:03:30Z", completed=kw.pop("completed", None), disks=disks,
                       step="DirectVolume: Running (Step: 32/38)", **kw)


WIDTHS = [30, 40, 50, 60, 72, 80, 100, 120, 160, 200, 300]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("style", [UTF8, ASCII, COLOR], ids=["utf8", "ascii", "color"])
@pytest.mark.parametrize("wide", [False, True], ids=["narrow", "wide"])
def test_no_line_is_wider_than_the_terminal_and_every_disk_has_its_row(width, style, wide):
    m = big(warnings=["DirectVolumeMigrationBlocked: " + "slow " * 40])
    lines = L.frame([m], width, 50, style, wide=wide, now=NOW, event="vm1: Migrating - " + "x" * 300)
    assert max(visible(ln) for ln in lines) <= width, [ln for ln in lines if visible(ln) > width]
    assert sum(ln.startswith("PLAN ") for ln in lines) == 1
    rows = [ln for ln in lines if ESCAPES.sub("", ln).startswith(("rhe", "web"))]
    assert len(rows) == 4
    assert lines[1].startswith("DISKS 1/4 done")
    # never wrapped, never an escape that is not a colour
    assert all("\n" not in ln for ln in lines)
    assert all(code.endswith("m") for ln in lines for code in ESCAPES.findall(ln))
    if not style.color:
        assert not any(ESCAPES.search(ln) for ln in lines)


def test_columns_are_dropped_by_priority_as_the_terminal_narrows():
    heads = {}
    for w in WIDTHS:
        lines = L.table(big(), w, UTF8)
        heads[w] = lines[0].split()
    assert heads[300] == ["VM", "VOLUME", "MODE", "PHASE", "PROGRESS", "ETA", "PVC", "MESSAGE"]
    assert "PVC" not in heads[80] and "MESSAGE" in heads[80]   # PVC names go before what is happening
    assert heads[40] == ["VM", "PHASE", "PROGRESS", "ETA"] or heads[40] == ["VM", "PHASE", "PROGRESS"]
    for w in WIDTHS:  # VM, PHASE and PROGRESS always stay; the kept order is the table's order
        assert {"VM", "PHASE", "PROGRESS"} <= set(heads[w])
        order = [h for h in heads[300] if h in heads[w]]
        assert heads[w] == order
    for a, b in zip(WIDTHS, WIDTHS[1:]):  # a wider terminal never shows fewer columns
        assert set(heads[a]) <= set(heads[b])


def test_wide_has_every_column_when_it_fits():
    lines = L.table(big(), 400, UTF8, wide=True)
    assert lines[0].split() == ["VM", "VOLUME", "SOURCE", "PVC", "TARGET", "PVC", "SOURCE", "SC", "TARGET", "SC",
                                "MODE", "PHASE", "PROGRESS", "ETA", "RATE", "ELAPSED", "ATTEMPT", "MESSAGE"]
    assert "fast-replicated-ssd" in lines[1] and "rsync transfer of the volume is running on node worker-3" in lines[1]


def test_long_names_are_shortened_with_an_ellipsis_keeping_both_ends():
    lines = L.table(big(), 120, UTF8)
    row = lines[2]
    assert "…" in row and "data-volume-with-a-long-name" not in row
    short = shorten("rhel9-database-primary-0-rootdisk-mig-x7bq", 20, UTF8, "mid")
    assert len(short) == 20 and short.startswith("rhel9-da") and short.endswith("mig-x7bq")
    assert shorten("abc", 10, UTF8) == "abc" and shorten("abcdefghijkl", 6, ASCII) == "abc..."
    pair = [ln for ln in L.table(big(), 160, UTF8) if "Succeeded" in ln][0]
    assert "web-data → web-data-mig-x7bq" in pair  # short names are not touched


def test_natural_width_into_a_pipe_has_no_bar_and_no_cut_names():
    text = "\n".join(L.frame([big()], None, None, UTF8, now=NOW))
    assert "█" not in text and "·" not in text
    assert "rhel9-database-primary-0-data-volume-with-a-long-name-mig-x7bq" in text
    assert "PLAN production-databases/vm-storage-plan   ENGINE mtc   TYPE cutover" in text


def test_header_keeps_plan_and_result_and_shortens_the_step_before_dropping_it():
    m = big()
    assert L.header(m, None, UTF8, NOW).endswith("RESULT Running   ELAPSED 4m0s")
    h80 = L.header(m, 80, UTF8, NOW)
    assert "PLAN production-databases/vm-storage-plan" in h80 and "RESULT Running" in h80 and "STEP Direct" in h80
    h50 = L.header(m, 50, UTF8, NOW)
    assert len(h50) <= 50 and "RESULT Running" in h50 and "PLAN production-" in h50 and "…" in h50
    assert "\x1b[36mRunning\x1b[0m" in L.header(m, 120, COLOR, NOW)
    assert "STARTED-BY" not in L.header(m, None, UTF8, NOW)  # the plugin's own: nothing to say
    found = dict(m, startedBy="migration-controller")
    assert "ENGINE mtc   STARTED-BY migration-controller   TYPE" in L.header(found, None, UTF8, NOW)
    assert "STARTED-BY" not in L.header(found, 80, UTF8, NOW) and "RESULT Running" in L.header(found, 80, UTF8, NOW)
    done = big("Succeeded", completed="2025-06-01T10:05:00Z")
    assert "ELAPSED 1m30s" in L.header(done, None, UTF8, NOW + 999)  # completed: the clock does not matter


def test_overall_line_counts_weights_by_size_and_estimates_the_end():
    m = big()
    t = L.totals(m)
    assert (t["done"], t["total"], t["failed"]) == (1, 4, 0)
    # 10% of 10 GiB + 55% of 20 GiB + 0 of 5 GiB + all of 0.5 GiB
    assert t["moved"] == pytest.approx((1 + 11 + 0.5) * (1 << 30))
    line = L.overall(m, 100, UTF8)
    assert "12.5 GiB of 35.5 GiB" in line and "35%" in line and "█" in line and len(line) <= 100
    assert "ETA -" in line  # a pending disk has no estimate yet: the whole has none
    m["disks"][2].update(phase="Running", progressPercent=50, elapsed="1m0s")
    assert "ETA ~9m0s" in L.overall(m, 100, UTF8)   # parallel copies: the slowest disk (10% after 1m)
    nosize = big()
    for d in nosize["disks"]:
        d.pop("_sizeBytes")
    assert "GiB" not in L.overall(nosize, 100, UTF8)


def test_height_keeps_the_top_and_says_what_it_hid():
    m = big(extra=[disk(f"vm{i}", "rootdisk", pct=i) for i in range(30)])
    lines = L.frame([m], 100, 24, UTF8, now=NOW)
    assert len(lines) == 23 and lines[0].startswith("PLAN ") and "more line(s)" in lines[-1]


def test_bars_ascii_and_utf8():
    assert bar(50, 10, ASCII) == "#####-----" and bar(None, 4, ASCII) == "----"
    assert bar(100, 6, UTF8) == "██████" and bar(0, 3, UTF8) == "···" and len(bar(33, 7, UTF8)) == 7
    assert bar(55, 10, UTF8) == "█████▌····"


def test_phase_colours_and_no_colour_without_style():
    lines = L.table(big(), 200, COLOR)
    assert any("\x1b[32mSucceeded\x1b[0m" in ln for ln in lines) and any("\x1b[36m" in ln for ln in lines)
    assert not any("\x1b[" in ln for ln in L.table(big(), 200, UTF8))


# ---- summary, next step, the plan before a cutover -------------------------------------------------------
def done(result="Succeeded", phases=("Succeeded", "Succeeded"), type_="cutover"):
    disks = [disk("vm1", "rootdisk", phase=phases[0], pct=100, size=1 << 30, elapsed="2m0s"),
             disk("vm1", "data", phase=phases[1], pct=100, size=3 << 30, elapsed="5m10s")]
    return P.migration("p", "ns", "kubevirt", type_, result, result, started="2025-06-01T10:00:00Z",
                       completed="2025-06-01T10:06:00Z", disks=disks)


def test_summary_says_what_moved_how_long_the_slowest_and_the_next_step():
    lines = S.summary([done()], now=NOW)
    assert lines[:2] == ["Succeeded: 2 of 2 disk(s) moved (4.0 GiB) in 6m0s", "Slowest disk: vm1/data (5m10s)"]
    assert S.summary([done(), done()], now=NOW)[0] == "ns/p:"  # several migrations: each one named
    assert "Next: verify the VM(s) and their data:" in lines and "  kubectl get vm,vmi -n ns vm1" in lines
    assert "  kubectl delete dv,pvc -n ns vm1-data vm1-rootdisk --ignore-not-found" in lines
    narrow = S.summary([done()], now=NOW, width=40)
    assert all(len(ln) <= 40 for ln in narrow)
    cmd = [ln for ln in narrow if ln.startswith("  ") and ln.rstrip(" \\")]
    joined = " ".join(ln.rstrip("\\").strip() for ln in cmd if "delete" in ln or ln.startswith("    "))
    assert "kubectl delete dv,pvc -n ns vm1-data vm1-rootdisk --ignore-not-found" in " ".join(joined.split())


@pytest.mark.parametrize("m", [done("Failed", ("Succeeded", "Failed")), done("Canceled", ("Succeeded", "Canceled")),
                               done("Running", ("Succeeded", "Running")), done(type_="stage"),
                               done("Succeeded", ("Succeeded", "Skipped"))])
def test_no_delete_command_unless_every_destination_is_confirmed(m):
    text = "\n".join(S.summary([m], now=NOW))
    if m["type"] == "cutover" and m["result"] == "Succeeded":   # the skipped disk is not counted
        assert "kubectl delete dv,pvc -n ns vm1-rootdisk --ignore-not-found" in text
    else:
        assert "kubectl delete" not in text


def test_slowest_disk_falls_back_to_the_observed_time():
    m = done()
    for d in m["disks"]:
        d["elapsed"] = None
    lines = S.summary([m], now=NOW, durations={("ns", "p", "vm1", "rootdisk"): 400.0, ("ns", "p", "vm1", "data"): 9})
    assert "Slowest disk: vm1/rootdisk (6m40s)" in lines


def test_confirmation_shows_the_plan_table_and_the_hazards_within_the_width():
    plan = {"namespace": "ns", "vms": ["vm1"], "targetStorageClass": "fast", "mode": "offline",
            "moves": [{"vm": "vm1", "volume": "rootdisk", "sourcePVC": "vm1-rootdisk-" + "x" * 40,
                       "targetPVC": "vm1-rootdisk-fast", "sourceSC": "standard", "targetSC": "fast",
                       "mode": "offline", "size": "10Gi"}]}
    for width in (None, 60, 80, 200):
        lines = S.confirmation(plan, ["the cutover quiesces namespace ns: deployment/web"], width, UTF8)
        assert lines[0].startswith("Plan: 1 disk(s) of 1 VM(s) in namespace ns")
        assert width is not None or lines[0].endswith("→ StorageClass fast (offline)")
        assert any(ln.startswith("VM") for ln in lines) and any(ln.startswith("vm1") for ln in lines)
        hazard = " ".join(ln.strip() for ln in lines[lines.index("") + 1:] if ln.startswith(("hazard", "  ")))
        assert hazard.endswith("hazard: the cutover quiesces namespace ns: deployment/web")
        assert width is None or all(len(ln) <= width for ln in lines)
        if width == 80:
            assert all(h in lines[2] for h in ("VM", "VOLUME", "SOURCE PVC", "TARGET PVC", "MODE"))
        if width == 60:  # the classes go first (the header names the target)
            assert "TARGET PVC" in lines[2] and "TARGET SC" not in lines[2]
    inv = {"vms": {"ns/vm1": {"running": True}}}
    assert "vm1" in S.stops_vms(plan, inv, stop=True)[0] and S.stops_vms(plan, inv, stop=False) == []


def _fleet(n_spaces=3, n_vms=8, running=2, done=3):
    ms = []
    for s in range(n_spaces):
        disks = []
        for i in range(n_vms):
            phase = "Succeeded" if i < done else "Running" if i < done + running else "Queued"
            disks.append({"vm": f"vm{i}", "volume": "data", "sourcePVC": f"vm{i}-data",
                          "targetPVC": f"vm{i}-data-fast", "mode": "offline", "phase": phase,
                          "progressPercent": 100 if phase == "Succeeded" else 40 if phase == "Running" else None,
                          "message": ""})
        ms.append({"plan": f"fleet-{s}-to-fast-abcde", "namespace": f"fleet-{s}", "engine": "kubevirt",
                   "type": "cutover", "phase": "Migrating", "result": "Running", "disks": disks,
                   "started": "2025-06-01T10:00:00Z"})
    return ms


def test_a_fleet_view_counts_the_vms_and_groups_the_rows_under_their_namespace():
    ms = _fleet()
    lines = L.frame(ms, 80, None, UTF8, now=NOW)
    assert lines[0].split() == ["FLEET", "3", "namespace(s)", "VMS", "24", "QUEUED", "9", "RUNNING", "6", "DONE", "9"]
    heads = [i for i, ln in enumerate(lines) if ln.startswith("PLAN ")]
    assert [lines[i].split()[1].split("/")[0] for i in heads] == ["fleet-0", "fleet-1", "fleet-2"]
    # each namespace's 8 rows sit under its own header
    for a, b in zip(heads, heads[1:] + [len(lines)]):
        assert sum(1 for ln in lines[a:b] if ln.startswith("vm")) == 8
    assert all(len(ln) <= 80 for ln in lines)
    # one namespace alone: no fleet line (the view of migrate -n as before)
    assert not L.frame(ms[:1], 80, None, UTF8, now=NOW)[0].startswith("FLEET")


def test_a_fleet_on_a_short_terminal_keeps_every_namespace_and_the_disks_in_flight():
    lines = L.frame(_fleet(), 80, 24, UTF8, now=NOW)
    assert len(lines) <= 23 and lines[0].startswith("FLEET")
    assert sum(ln.startswith("PLAN ") for ln in lines) == 3
    rows = [ln for ln in lines if ln.startswith("vm")]
    assert len(rows) == 6 and all(ln.split()[0] in ("vm3", "vm4") for ln in rows)  # the running ones
    assert all(len(ln) <= 80 for ln in lines)
