"""The benchmark's pure parts: -v 6 request-log parsing, URL templates, statistics, aggregation, table."""
import os
import sys

from bench import measure, report
from bench import objects as O

PLUGIN_LOG = """\
I1127 00:15:06.591242 28613 vm-storage] GET https://127.0.0.1:51507/apis/migration.openshift.io/v1alpha1/migplans? 200 OK in 34 milliseconds
Some other stderr line the command printed
I1127 00:15:06.641556 28613 vm-storage] GET https://127.0.0.1:51507/apis/kubevirt.io/v1/namespaces/bench-n100/virtualmachines? 200 OK in 13 milliseconds
I1127 00:15:06.700000 28613 vm-storage] POST https://127.0.0.1:51507/apis/authorization.k8s.io/v1/selfsubjectaccessreviews 201 Created in 2 milliseconds
I1127 00:15:06.800000 28613 vm-storage] GET https://127.0.0.1:51507/api/v1/namespaces/x/pods  in 10001 milliseconds (ReadTimeoutError)
I1127 00:15:06.900000 28613 vm-storage] GET https://127.0.0.1:51507/apis/kubevirt.io/v1/namespaces/x/virtualmachines/vm-1 404 Not Found in 3 milliseconds
"""

KUBECTL_NEW = """\
I1127 00:12:59.074744   24447 loader.go:408] Config loaded from file:  /tmp/benchdev/admin.kubeconfig
I1127 00:12:59.080842   24447 round_trippers.go:632] "Response" verb="GET" url="https://127.0.0.1:51507/api?timeout=32s" status="200 OK" milliseconds=4
I1127 00:12:59.108019   24447 round_trippers.go:632] "Response" verb="GET" url="https://127.0.0.1:51507/api/v1/namespaces/ns/persistentvolumeclaims?limit=500" status="200 OK" milliseconds=4
I1127 00:12:59.200002   24447 table_printer.go:45] Unable to decode server response into a Table.
"""

KUBECTL_OLD = """\
I0601 10:00:00.000001   123 round_trippers.go:553] GET https://h:6443/apis/kubevirt.io/v1/namespaces/ns/virtualmachines?limit=500 200 OK in 7 milliseconds
"""


def test_parse_plugin_log_counts_every_request_including_failures():
    reqs = measure.parse_requests(PLUGIN_LOG)
    assert [r["method"] for r in reqs] == ["GET", "GET", "POST", "GET", "GET"]
    assert reqs[0]["url"].endswith("/migplans?")
    assert [r["status"] for r in reqs] == ["200", "200", "201", None, "404"]
    summary = measure.summarize_requests(reqs)
    assert summary["total"] == 5
    assert summary["errors"] == 2  # the timeout (no status) and the 404


def test_parse_kubectl_structured_and_classic_logs():
    new = measure.parse_requests(KUBECTL_NEW)
    assert [(r["method"], r["status"]) for r in new] == [("GET", "200"), ("GET", "200")]
    assert new[1]["url"] == "https://127.0.0.1:51507/api/v1/namespaces/ns/persistentvolumeclaims?limit=500"
    old = measure.parse_requests(KUBECTL_OLD)
    assert len(old) == 1 and old[0]["url"].endswith("virtualmachines?limit=500")


def test_lines_without_a_request_are_not_counted():
    assert measure.parse_requests("I1127 loader.go:408] Config loaded\nerror: boom\n") == []


def test_url_template_collapses_names_and_namespaces():
    t = measure.url_template
    assert t("https://h/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1") == \
        "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}"
    assert t("https://h/apis/kubevirt.io/v1/namespaces/b/virtualmachines/vm-2") == \
        t("https://h/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1")
    assert t("https://h/api/v1/namespaces/a/persistentvolumeclaims?limit=500") == \
        "/api/v1/namespaces/{ns}/persistentvolumeclaims"
    assert t("https://h/api/v1/namespaces/bench-n1") == "/api/v1/namespaces/{name}"
    assert t("https://h/api/v1/persistentvolumes/pv-1") == "/api/v1/persistentvolumes/{name}"
    assert t("https://h/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1/status") == \
        "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/status"
    assert t("https://h/apis/migration.openshift.io/v1alpha1/migplans?") == "/apis/migration.openshift.io/v1alpha1/migplans"
    assert t("https://h/apis/kubevirt.io/v1") == "/apis/kubevirt.io/v1"
    assert t("https://h/version") == "/version"


def test_repeated_requests_per_object_show_in_the_summary():
    log = "".join(f"I1 1 vm-storage] GET https://h/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm-{i} "
                  f"200 OK in 1 milliseconds\n" for i in range(7))
    summary = measure.summarize_requests(measure.parse_requests(log))
    assert summary["repeated"] == {"GET /apis/kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{name}": 7}


def test_watch_requests_are_recognised():
    assert measure.is_watch("https://h/apis/x/v1/namespaces/n/migmigrations?watch=true&resourceVersion=5")
    assert measure.is_watch("https://h/apis/x/v1/migplans?watch=1")
    assert not measure.is_watch("https://h/apis/x/v1/migplans?limit=500")


def test_median_ratio_and_growth():
    assert measure.median([3.0, 1.0, 2.0, 10.0, 4.0]) == 3.0
    assert measure.median([1.0, 2.0]) == 1.5
    assert measure.median([]) is None
    assert measure.ratio(3.0, 2.0) == 1.5
    assert measure.ratio(1.0, 0) is None and measure.ratio(None, 1.0) is None
    assert not measure.grows_with_n({1: 37, 100: 37, 1000: 37})
    assert measure.grows_with_n({1: 6, 100: 105, 1000: 1005})
    assert not measure.grows_with_n({1000: 5})


def _step(seconds, rss, nreq, exit_=0, url="https://h/api/v1/namespaces/n/pods"):
    return {"argv": ["kubectl"], "seconds": seconds, "maxrssKB": rss, "exit": exit_, "stdoutBytes": 10,
            "requests": [{"method": "GET", "url": url, "status": "200"}] * nreq, "stderrTail": ""}


def test_aggregate_sums_steps_of_a_run_and_takes_medians_over_runs():
    runs = [[_step(1.0, 1024 * 40, 2), _step(0.5, 1024 * 60, 1)],
            [_step(2.0, 1024 * 40, 2), _step(0.5, 1024 * 50, 1)],
            [_step(9.0, 1024 * 40, 2), _step(0.5, 1024 * 70, 1)]]
    agg = report.aggregate(runs)
    assert agg["medianSeconds"] == 2.5           # runs: 1.5, 2.5, 9.5
    assert agg["medianMaxrssMB"] == 60.0         # max per run: 60, 50, 70 MB
    assert agg["requests"] == 3 and agg["requestsPerRun"] == [3, 3, 3]
    assert agg["exit"] == 0


def test_aggregate_reports_a_failing_step():
    agg = report.aggregate([[_step(1.0, 1, 1), _step(1.0, 1, 1, exit_=7)]])
    assert agg["exit"] == 7


def _case(name, n, p_s, k_s, p_req, k_req=4):
    p = report.aggregate([[_step(p_s, 1024 * 45, p_req)]])
    k = report.aggregate([[_step(k_s, 1024 * 70, k_req)]])
    return report.case_figures(name, n, p, k, plugin_direct_rss_kb=1024 * 40)


def test_table_has_one_row_per_case_with_ratio():
    cases = [_case("status -o json", 1000, 1.2, 1.0, 6), _case("status -o json", 1, 0.4, 0.2, 6)]
    text = report.table(cases, {"n": 1000, "seconds": 25.0, "requests": 60, "watchRequests": 0, "polls": 12,
                                "requestsPerMinute": 144.0})
    lines = text.splitlines()
    assert lines[0].startswith("| N | command |")
    assert lines[2].startswith("| 1 | status -o json | 0.400 | 0.200 | 2.00× | 45 / 40 | 70 | 6 | 4 | 0 |")
    assert lines[3].startswith("| 1000 | status -o json | 1.200 | 1.000 | 1.20× |")
    assert "144.0 requests/minute" in text and "12 polls" in text


def test_request_growth_names_the_templates_that_grew():
    per_vm = "https://h/apis/kubevirt.io/v1/namespaces/n/virtualmachineinstances/vm"
    cases = [_case("check", 1, 1, 1, 5), _case("check", 1000, 1, 1, 5), _case("migrate", 1, 1, 1, 5)]
    cases.append(report.case_figures("migrate", 1000, report.aggregate([[_step(1, 1, 5), _step(1, 1, 1000, url=per_vm)]]),
                                     None))
    growth = report.request_growth(cases)
    assert growth["check"] == {"requestsByN": {"1": 5, "1000": 5}, "grows": False}
    assert growth["migrate"]["grows"] is True
    assert growth["migrate"]["growingTemplates"] == {
        "GET /apis/kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{name}": [0, 1000]}


def test_run_measures_a_real_child_process():
    res = measure.run([sys.executable, "-c", "import sys; b = bytearray(30 * 1024 * 1024); "
                       "sys.stderr.write('I1 1 vm-storage] GET https://h/version 200 OK in 1 milliseconds\\n'); "
                       "print('out')"], keep_stdout=True)
    assert res["exit"] == 0 and res["stdout"] == "out\n"
    assert res["maxrssKB"] > 30 * 1024          # the child's own peak, with the 30 MB buffer
    assert len(res["requests"]) == 1 and res["seconds"] > 0


def test_run_stops_a_command_at_its_timeout():
    res = measure.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert res["timedOut"] and res["seconds"] < 10 and res["exit"] != 0


def test_objects_disks_and_mtc_lists_agree():
    n = 4
    plan, dvm = O.migplan(n), O.dvm(n, "uid-1")
    assert len(plan["spec"]["persistentVolumes"]) == 2 * n == len(dvm["spec"]["persistentVolumeClaims"])
    st = O.dvm_status(n)
    assert len(st["runningLiveMigration"]) + len(st["runningPods"]) == 2 * n
    vm = O.vm(n, 1)
    claims = {v.get("dataVolume", {}).get("name") or v.get("persistentVolumeClaim", {}).get("claimName")
              for v in vm["spec"]["template"]["spec"]["volumes"]} - {None}
    assert claims == set(O.claims(1))
    assert os.path.commonprefix([O.pv_name("a", "x"), "pv-"]) == "pv-" and O.pv_name("a", "x") != O.pv_name("b", "x")


def test_run_delivers_sigint_even_when_the_parent_ignores_it():
    import signal
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under `cmd &` in a shell without job control
    try:
        res = measure.run([sys.executable, "-c", "import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n"
                           "    raise SystemExit(130)"], timeout=3.0, kill_after=10)  # 3 s: the child is inside its try even when loaded
    finally:
        signal.signal(signal.SIGINT, old)
    assert res["exit"] == 130 and res["seconds"] < 9


def test_watch_cost_counts_each_kinds_first_list_and_watch_as_start_up():
    from bench.measure import watch_cost

    base = "https://h/apis/migration.openshift.io/v1alpha1/namespaces/openshift-migration"
    reqs = [{"method": "GET", "url": f"{base}/migplans", "status": "200"},
            {"method": "GET", "url": f"{base}/migplans?allowWatchBookmarks=true&resourceVersion=5&timeoutSeconds=300"
                                     "&watch=true", "status": "200"},
            {"method": "GET", "url": f"{base}/dvmps?labelSelector=a", "status": "200"},
            {"method": "GET", "url": f"{base}/dvmps?labelSelector=a&timeoutSeconds=600&watch=true", "status": "200"},
            {"method": "GET", "url": f"{base}/migplans", "status": "200"}]  # a poll's second LIST: steady
    assert watch_cost(reqs) == {"startup": 4, "steady": 1, "kindsWatched": 2, "rewatchPerMinute": 0.3}
