"""The fleet benchmark's pure parts (bench/fleet_model.py): the copy-time model and ideal makespan, the -v 6 log
by verb and kind, per-VM durations from timestamps, the floors."""
from bench import fleet_model as FM

LOG = """\
I1201 12:00:00.000000 1 vm-storage] GET https://h:1/apis/kubevirt.io/v1 200 OK in 3 milliseconds
I1201 12:00:00.500000 1 vm-storage] POST https://h:1/apis/authorization.k8s.io/v1/selfsubjectaccessreviews 201 Created in 2 milliseconds
I1201 12:00:01.000000 1 vm-storage] GET https://h:1/apis/kubevirt.io/v1/namespaces/a/virtualmachines?labelSelector=fleet%3Dbench 200 OK in 9 milliseconds
I1201 12:00:02.000000 1 vm-storage] POST https://h:1/apis/cdi.kubevirt.io/v1beta1/namespaces/a/datavolumes 201 Created in 5 milliseconds
a: vm-1: WaitingForVolumes
I1201 12:00:03.000000 1 vm-storage] GET https://h:1/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1 200 OK in 2 milliseconds
I1201 12:00:04.000000 1 vm-storage] PUT https://h:1/api/v1/namespaces/a/configmaps/vm-storage-m1 200 OK in 4 milliseconds
I1201 12:00:09.250000 1 vm-storage] PATCH https://h:1/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1 200 OK in 6 milliseconds
I1201 12:00:10.000000 1 vm-storage] GET https://h:1/apis/kubevirt.io/v1/namespaces/a/virtualmachineinstancemigrations?watch=true&resourceVersion=5 200 OK in 1000 milliseconds
"""


def test_model_passes_follow_the_stand_ins_defaults():
    # cdi.py _sync_dv: create+bind, CloneScheduled, CloneInProgress 0%, then 5 increments of 20%
    assert FM.clone_passes(5) == 8
    assert FM.import_passes(4) == 7
    # kubevirt_migration.py _advance: Pending (the patch's pass) .. Running, then 3 Running passes
    assert FM.live_passes(3) == 9
    steps = {"clone_steps": 5, "import_steps": 4, "running_passes": 3}
    assert FM.vm_model_seconds("offline", 0.5, 2.0, steps) == 4.0
    assert FM.vm_model_seconds("live", 0.5, 2.0, steps) == 7 * 0.5 + 9 * 2.0


def test_ideal_makespan_is_the_sum_over_the_slots_never_below_the_longest_copy():
    assert FM.ideal_makespan([4.0] * 100, 20) == 20.0
    assert FM.ideal_makespan([4.0, 4.0, 30.0], 3) == 30.0   # one VM cannot be split over slots
    assert FM.ideal_makespan([4.0, 4.0], 10) == 4.0          # more slots than VMs
    assert FM.ideal_makespan([], 5) == 0.0


def test_pass_periods_are_start_to_start_within_the_window():
    assert FM.pass_periods([0.0, 1.0, 3.0, 6.0, 10.0], since=0.5, until=7.0) == [2.0, 3.0]


def test_passes_between_counts_the_first_and_the_last_pass():
    starts = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert FM.passes_between(starts, 1.0, 4.5) == 4  # passes 1, 2, 3, 4
    assert FM.passes_between(starts, 2.0, 2.5) == 1


def test_request_kind_names_lists_watches_objects_subresources_and_discovery():
    k = FM.request_kind
    assert k("GET", "https://h/apis/kubevirt.io/v1/namespaces/a/virtualmachines?labelSelector=x") == \
        ("LIST", "virtualmachines")
    assert k("GET", "https://h/apis/kubevirt.io/v1/virtualmachines") == ("LIST", "virtualmachines")
    assert k("GET", "https://h/apis/kubevirt.io/v1/namespaces/a/virtualmachines/vm-1") == ("GET", "virtualmachines")
    assert k("GET", "https://h/api/v1/namespaces/a/configmaps?watch=true&resourceVersion=3") == ("WATCH", "configmaps")
    assert k("PUT", "https://h/apis/subresources.kubevirt.io/v1/namespaces/a/virtualmachines/vm-1/start") == \
        ("PUT", "virtualmachines/start")
    assert k("PUT", "https://h/apis/cdi.kubevirt.io/v1beta1/namespaces/a/datavolumes/d/status") == \
        ("PUT", "datavolumes/status")
    assert k("GET", "https://h/api/v1/namespaces/a") == ("GET", "namespaces")
    assert k("GET", "https://h/api/v1/namespaces") == ("LIST", "namespaces")
    assert k("GET", "https://h/apis/kubevirt.io/v1") == ("GET", "discovery")
    assert k("GET", "https://h/api") == ("GET", "discovery")
    assert k("GET", "https://h/version") == ("GET", "version")
    assert k("GET", "https://h/api/v1/nodes") == ("LIST", "nodes")


def test_access_reviews_are_reads_and_every_other_post_put_patch_delete_a_write():
    assert not FM.is_write("POST", "selfsubjectaccessreviews")
    assert not FM.is_write("POST", "selfsubjectrulesreviews")
    assert FM.is_write("POST", "datavolumes") and FM.is_write("PATCH", "virtualmachines")
    assert FM.is_write("DELETE", "configmaps") and not FM.is_write("LIST", "datavolumes")


def test_request_counts_of_a_log_reads_writes_by_kind_and_per_vm():
    reqs = FM.parse_timed_requests(LOG)
    assert len(reqs) == 8  # the plugin's own progress line is not a request
    assert reqs[0]["t"] == 12 * 3600 and reqs[6]["t"] == 12 * 3600 + 9.25
    c = FM.request_counts(reqs, vms=2)
    assert (c["total"], c["reads"], c["writes"]) == (8, 5, 3)
    assert c["writesByKind"] == {"PATCH virtualmachines": 1, "POST datavolumes": 1, "PUT configmaps": 1}
    assert c["readsByKind"]["POST selfsubjectaccessreviews"] == 1
    assert c["readsByKind"]["WATCH virtualmachineinstancemigrations"] == 1
    assert c["perVM"] == 4.0 and c["writesPerVM"] == 1.5


def test_phases_of_run_from_the_timed_log():
    p = FM.phases_of_run(FM.parse_timed_requests(LOG))
    assert p == {"preflight": 2.0, "copyWindow": 7.25, "tail": 0.75}
    assert FM.phases_of_run([]) == {"preflight": None, "copyWindow": None, "tail": None}


def test_steady_rate_counts_only_the_window():
    times = [0.0, 1.0, 10.0, 20.0, 30.0, 59.0, 61.0, None]
    assert FM.steady_rate(times, 10.0, 70.0) == 5.0  # 10, 20, 30, 59, 61 in [10, 70): 5 in 60 s
    assert FM.steady_rate(times, 5.0, 5.0) is None


def _dv(ns, name, created, ready=None):
    st = {"phase": "Succeeded" if ready else "CloneInProgress", "conditions": []}
    if ready:
        st["conditions"].append({"type": "Ready", "status": "True", "lastTransitionTime": ready})
    return {"metadata": {"namespace": ns, "name": name, "creationTimestamp": created}, "status": st}


def test_vm_durations_from_record_dataVolumes_and_vmims():
    records = [{"namespace": "a", "vms": {
        "vm-1": {"mode": "offline", "result": "Succeeded", "patchedAt": "2026-12-01T12:00:09Z",
                 "dataVolumes": [{"metadata": {"name": "vm-1-data-fast"}}]},
        "vm-2": {"mode": "live", "result": "Succeeded", "patchedAt": "2026-12-01T12:00:05Z",
                 "dataVolumes": [{"metadata": {"name": "vm-2-data-fast"}}]},
        "vm-3": {"mode": "offline", "result": "Running", "patchedAt": None,
                 "dataVolumes": [{"metadata": {"name": "vm-3-data-fast"}}]}}}]
    dvs = [_dv("a", "vm-1-data-fast", "2026-12-01T12:00:01Z", "2026-12-01T12:00:08Z"),
           _dv("a", "vm-2-data-fast", "2026-12-01T12:00:00Z", "2026-12-01T12:00:04Z"),
           _dv("a", "vm-3-data-fast", "2026-12-01T12:00:02Z")]
    vmims = [{"metadata": {"namespace": "a"}, "spec": {"vmiName": "vm-2"}, "status": {"phaseTransitionTimestamps": [
        {"phase": "Running", "phaseTransitionTimestamp": "2026-12-01T12:00:07Z"},
        {"phase": "Succeeded", "phaseTransitionTimestamp": "2026-12-01T12:00:12Z"}]}}]
    by = {d["vm"]: d for d in FM.vm_durations(records, dvs, vmims)}
    assert (by["vm-1"]["copySeconds"], by["vm-1"]["slotSeconds"]) == (7.0, 8.0)
    assert (by["vm-2"]["copySeconds"], by["vm-2"]["slotSeconds"]) == (4.0, 12.0)  # live: to the VMIM's Succeeded
    assert (by["vm-3"]["copySeconds"], by["vm-3"]["slotSeconds"]) == (None, None)
    s = FM.stats(d["slotSeconds"] for d in by.values())
    assert (s["n"], s["min"], s["max"], s["median"]) == (2, 8.0, 12.0, 10.0)
    assert FM.stats([None]) is None


def test_floors_are_judged_against_the_issue_limits():
    assert FM.kubevirt_writes_per_disk(1) == 3.0 and FM.kubevirt_writes_per_disk(2) == 2.0
    rows = {f["floor"]: f for f in FM.floors(4.2, FM.kubevirt_writes_per_disk(1), 1, 130.0, 100.0, None)}
    assert rows["requests per VM"]["limit"] == 4.0 and rows["requests per VM"]["met"] is False
    assert rows["makespan s"]["limit"] == 120.0 and rows["makespan s"]["met"] is False
    assert rows["idle status -w requests/minute"]["met"] is None  # not measured: neither met nor failed
