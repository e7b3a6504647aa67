"""judge_live / cancel_done: the reference's success criteria (BEHAVIOR §7) and recovery (§10)."""
from kubectl_vmmig.engines.kubevirt.track import INVALID_UPDATE, cancel_done, judge_live, our_vmims, vmim_selector, vmims_of

REC = {"originalClaims": {"root": "src"}, "targetClaims": {"root": "dst"}, "mapping": {"src": "dst"},
       "templateStorageClasses": {}, "knownVMIMs": ["old-uid"], "attempts": 0}


def vmim(uid, phase, ts="2026-01-01T00:00:01Z", state=None):
    return {"metadata": {"name": f"kubevirt-workload-update-{uid}", "uid": uid, "creationTimestamp": ts},
            "status": {"phase": phase, **({"migrationState": state} if state else {})}}


def vmi(claim="dst", state=None, conds=(), migrated=None):
    st = {"phase": "Running", "conditions": [{"type": t, "status": s, **({"message": m} if m else {})}
                                            for t, s, m in conds]}
    if state:
        st["migrationState"] = state
    if migrated:
        st["migratedVolumes"] = migrated
    return {"spec": {"volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": claim}}]}, "status": st}


def vm(claim="dst", conds=()):
    return {"metadata": {"name": "vm1"},
            "spec": {"updateVolumesStrategy": "Migration",
                     "template": {"spec": {"volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": claim}}]}}},
            "status": {"conditions": [{"type": t, "status": s, **({"message": m} if m else {})}
                                      for t, s, m in conds]}}


OK_STATE = {"migrationUid": "u1", "completed": True, "failed": False}


def test_selector_uses_uid_for_long_names():
    assert vmim_selector("vm1", "abc") == "kubevirt.io/volume-update-migration=vm1"
    assert vmim_selector("v" * 64, "abc") == "kubevirt.io/volume-update-migration=abc"


def test_old_vmims_are_not_ours():
    assert [m["metadata"]["uid"] for m in our_vmims([vmim("old-uid", "Succeeded"), vmim("u1", "Running")],
                                                     ["old-uid"])] == ["u1"]


def test_success_needs_every_criterion():
    ok = judge_live(REC, vm(), vmi(state=OK_STATE), [vmim("u1", "Succeeded")])
    assert ok["result"] == "Succeeded" and ok["vmim"]["uid"] == "u1" and ok["attempts"] == 1
    # completed but failed (aborted) is not success
    assert judge_live(REC, vm(), vmi(state=dict(OK_STATE, failed=True)), [vmim("u1", "Succeeded")])["result"] == "Running"
    # finding 10: a migration KubeVirt ran without the workload-update label (drain, evacuation) carries the
    # update too; and the labelled VMIMs may be garbage-collected already: the VMI decides
    assert judge_live(REC, vm(), vmi(state=dict(OK_STATE, migrationUid="x")), [vmim("u1", "Succeeded")])["result"] == "Succeeded"
    assert judge_live(REC, vm(), vmi(state=dict(OK_STATE, migrationUid="x")), [])["result"] == "Succeeded"
    # a VMI started fresh on the destination claims (no migration at all) is not a copy
    assert judge_live(REC, vm(), vmi(), [])["result"] == "Running"
    # VMI still on the source claim
    assert judge_live(REC, vm(), vmi(claim="src", state=OK_STATE), [vmim("u1", "Succeeded")])["result"] == "Running"
    # VolumesChange still present
    assert judge_live(REC, vm(), vmi(state=OK_STATE, conds=[("VolumesChange", "True", "migrate volumes")]),
                      [vmim("u1", "Succeeded")])["result"] == "Running"
    # migratedVolumes not cleared yet
    assert judge_live(REC, vm(), vmi(state=OK_STATE, migrated=[{"volumeName": "root"}]),
                      [vmim("u1", "Succeeded")])["phase"] == "Finalizing"
    # an old succeeded VMIM (before our patch) is not ours
    assert judge_live(REC, vm(), vmi(state=dict(OK_STATE, migrationUid="old-uid")),
                      [vmim("old-uid", "Succeeded")])["result"] == "Running"


def test_failed_attempts_counted_with_reason():
    vmims = [vmim("u1", "Failed", "2026-01-01T00:00:01Z",
                  {"migrationUid": "u1", "completed": True, "failed": True, "failureReason": "too small"}),
             vmim("u2", "Failed", "2026-01-01T00:00:30Z",
                  {"migrationUid": "u2", "completed": True, "failed": True, "failureReason": "too small"})]
    out = judge_live(REC, vm(), vmi(conds=[("VolumesChange", "True", "migrate volumes")]), vmims)
    assert out["result"] == "Running" and out["failures"] == 2 and out["attempts"] == 2
    assert "too small" in out["message"] and out["vmim"]["uid"] == "u2"


def test_pending_states():
    assert "accept" in judge_live(REC, vm(), vmi(claim="src"), [])["message"]
    assert judge_live(REC, vm(), vmi(conds=[("VolumesChange", "False", "One of the destination volumes doesn't exist: x")]),
                      [])["phase"] == "WaitingForDestination"
    assert judge_live(REC, vm(), vmi(), [vmim("u1", "Scheduling")])["phase"] == "Scheduling"


def test_restart_required_fails_with_cancel_hint_only_while_the_vmi_is_on_the_sources():
    rr = [("RestartRequired", "True", "invalid volumes to update with migration: shareable: [x]")]
    out = judge_live(REC, vm(conds=rr), vmi(claim="src"), [], migration="m1")
    assert out["result"] == "Failed" and "WITHOUT copying" in out["message"] and "cancel m1" in out["message"]
    # the update was accepted (VMI moved to the destination, VolumesChange) - keep following, never "cancel now"
    out = judge_live(REC, vm(conds=rr), vmi(conds=[("VolumesChange", "True", None)], migrated=[{"volumeName": "root"}]),
                     [vmim("u1", "Running")], migration="m1")
    assert out["result"] == "Running" and "cancel" not in out["message"]


def test_finding2_restart_required_after_a_finished_copy_is_success_not_cancel_now():
    """RestartRequired raised after the copy (e.g. someone removed updateVolumesStrategy from the running VM,
    vm.go syncRestartRequired compares with the start revision): the VMI runs on the destination - Succeeded."""
    rr = [("RestartRequired", "True", "a non-live-updatable field was changed in the template spec")]
    out = judge_live(REC, vm(conds=rr), vmi(state=OK_STATE), [vmim("u1", "Succeeded", state=OK_STATE)], "m1", "vm1")
    assert out["result"] == "Succeeded" and "cancel" not in out["message"]
    # and with the VMIMs garbage-collected
    assert judge_live(REC, vm(conds=rr), vmi(state=OK_STATE), [], "m1", "vm1")["result"] == "Succeeded"


def test_finding8_transient_volumes_update_error_keeps_following():
    transient = [("Failure", "True", "Operation cannot be fulfilled: the object has been modified")]
    v = vm(conds=transient)
    v["status"]["conditions"][0]["reason"] = "VolumesUpdateError"
    out = judge_live(REC, v, vmi(conds=[("VolumesChange", "True", None)]), [vmim("u1", "Running")])
    assert out["result"] == "Running" and "retries" in out["message"]
    v["status"]["conditions"][0]["message"] = INVALID_UPDATE
    assert judge_live(REC, v, vmi(conds=[("VolumesChange", "True", None)]), [])["result"] == "Failed"


def test_finding10_vmims_matched_by_vmi_name_labelled_or_not():
    labelled = dict(vmim("u1", "Running"), spec={"vmiName": "vm1"})
    labelled["metadata"]["labels"] = {"kubevirt.io/volume-update-migration": "vm1"}
    evacuation = dict(vmim("u2", "Running"), spec={"vmiName": "vm1"})
    other = dict(vmim("u3", "Running"), spec={"vmiName": "vm2"})
    assert [m["metadata"]["uid"] for m in vmims_of([labelled, evacuation, other], "vm1")] == ["u1", "u2"]


def test_manual_recovery_revert_or_keep():
    conds = [("ManualRecoveryRequired", "True", None)]
    failed_state = {"migrationUid": "u1", "completed": True, "failed": True}
    out = judge_live(REC, vm(conds=conds), None, [vmim("u1", "Failed", state=failed_state)], "m1", "vm1")
    assert out["result"] == "Failed" and out["manualRecovery"]
    assert "restore the original volumes (root=src)" in out["message"]
    assert "kubectl patch vm vm1 --type=json" in out["message"] and '"value":"src"' in out["message"]
    done_state = dict(failed_state, targetNodeDomainReadyTimestamp="2026-01-01T00:01:00Z")
    out = judge_live(REC, vm(conds=conds), None, [vmim("u1", "Failed", state=done_state)], "m1", "vm1")
    assert "keep the destination volumes" in out["message"] and "updateVolumesStrategy" in out["message"]
    # the last seen state from the record is used when the VMIM is gone
    rec = dict(REC, migrationState=done_state)
    assert "keep the destination" in judge_live(rec, vm(conds=conds), None, [], "m1", "vm1")["message"]


def test_cancel_done():
    assert cancel_done(REC, vm(claim="src"), vmi(claim="src", conds=[("VolumesChange", "False", None)]))
    assert not cancel_done(REC, vm(claim="src"), vmi(claim="dst"))
    assert not cancel_done(REC, vm(claim="dst"), vmi(claim="src"))
    assert not cancel_done(REC, vm(claim="src"), vmi(claim="src", migrated=[{"volumeName": "root"}]))
    assert cancel_done(REC, vm(claim="src"), None)
