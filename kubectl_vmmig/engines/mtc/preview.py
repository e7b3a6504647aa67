"""The MTC engine's preview, pure: the MigPlan and MigMigration a run would create and every patch it would make,
in the order the run makes them (engine.apply): close the previous plan or refresh the adopted one, remove another
plan's source-for label from the disks to move, select the PVs, and - MTC's SwapPVCReferences - the VMs' claims."""
from ... import patches
from ...plan import moves_by_vm
from . import build as B
from . import plans as PL


def preview(choice, plan, vms=(), pvcs=(), kind="cutover", hooks=(), verify=False, host="host", checks=()):
    """{"objects", "patches", "checks"}. ``choice``: plans.choose_plan's answer; ``vms``/``pvcs``: the objects
    read (or from -f)."""
    mtc_ns = B.DEFAULT_NAMESPACE
    migplan = B.build_migplan(plan, mtc_ns, host, hooks, gen=choice["generation"])
    objects = [migplan, B.build_migmigration(plan, mtc_ns, kind, pname=migplan["metadata"]["name"])]
    cur = choice.get("current") or {}
    predicted = B.predicted_persistent_volumes(list(pvcs), plan["namespace"], (cur.get("status") or {}).get("suffix"),
                                               (cur.get("metadata") or {}).get("uid"))
    sel_ops, _ = B.selection_patch(predicted, plan, verify)
    out_patches = [{"apiVersion": B.GROUP_VERSION, "kind": "MigPlan", "namespace": mtc_ns,
                    "name": migplan["metadata"]["name"], "patch": sel_ops}]
    first = (choice.get("supersede"), "close the previous plan", PL.close_ops(migplan["metadata"]["name"])) \
        if choice.get("supersede") else (choice.get("current"), "refresh PV discovery", PL.REFRESH_OPS)
    if first[0] is not None:
        out_patches.insert(0, {"apiVersion": B.GROUP_VERSION, "kind": "MigPlan", "namespace": mtc_ns,
                               "name": first[0]["metadata"]["name"], "step": first[1], "patch": first[2]})
    for item in PL.labelled_for_other_plans([m["sourcePVC"] for m in plan["moves"]], list(pvcs),
                                            (cur.get("metadata") or {}).get("uid")):
        out_patches.insert(1 if first[0] is not None else 0, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": plan["namespace"],
            "name": item["pvc"], "step": "remove another plan's source-for label",
            "patch": PL.unlabel_ops(item["value"])})
    if kind == "cutover":
        by_name = {(v.get("metadata") or {}).get("name"): v for v in vms}
        for vm_name, moves in moves_by_vm(plan).items():
            vm = by_name.get(vm_name)
            if vm is None:
                continue
            live = all(m["mode"] == "live" for m in moves)
            ops = patches.volume_swap_patch(vm, {m["sourcePVC"]: m["targetPVC"] for m in moves}, live=live,
                                            target_storage_class=plan["targetStorageClass"] if live else None)
            out_patches.append({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                "namespace": plan["namespace"], "name": vm_name, "patch": ops})
    return {"objects": objects, "patches": out_patches, "checks": list(checks)}
