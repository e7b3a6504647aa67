"""Plan: which disk goes where, live or offline, under which destination name. Pure and engine-neutral.

``build_plan(inventory, vm_keys, target_sc, mode, capabilities, access_mode, volume_mode, naming)``::

    {"namespace", "vms": [vm names], "targetStorageClass", "requestedMode": live|offline|auto,
     "mode": live|offline,            # what the engine is asked for (MTC: spec.liveMigrate)
     "liveMigrate": bool, "accessMode", "volumeMode",
     "moves": [Move], "skipped": [{"vm","volume","claim","reason"}],
     "findings": [{"name","severity": ok|warning|error,"message"}]}   # mode decisions, merged by preflight

    Move = {"vm", "namespace", "volume", "kind": pvc|dataVolume, "dataVolumeTemplateIndex",
            "sourcePVC", "targetPVC", "sourceSC", "targetSC", "mode": live|offline,
            "size", "sizeBytes", "accessModes", "volumeMode", "targetAccessMode", "targetVolumeMode",
            "targetBindingMode": the target StorageClass volumeBindingMode or None}

``naming(disk_facts) -> str`` gives the destination claim name; each engine has its own rule (MTC:
``<base>-mig-<suffix>``, chosen by the controller), so the plan never invents names itself.
``capabilities``: ``{"liveMigration": bool, "liveMigrationReason": str}`` (what the cluster can do).
"""
from typing import Callable, Iterable, Optional

from .findings import finding

MODES = ("live", "offline", "auto")
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod", "auto")
VOLUME_MODES = ("Filesystem", "Block", "auto")


_finding = finding


def resolve_mode(requested: str, capabilities: Optional[dict]):
    """(liveMigrate, findings) for the requested mode and what the cluster can do.

    auto -> live where the cluster supports storage live migration, else offline with a warning;
    live on a cluster that cannot -> an error finding (refuse, never silently stop VMs)."""
    caps = capabilities or {}
    capable = caps.get("liveMigration", True)
    why = caps.get("liveMigrationReason") or "the cluster cannot live-migrate storage"
    if requested == "offline":
        return False, [_finding("mode", "ok", "offline: running VMs are stopped for the copy and restarted")]
    if capable:
        return True, [_finding("mode", "ok", f"{requested}: running VMs are live-migrated, stopped VMs copied offline")]
    if requested == "live":
        return True, [_finding("live-migration", "error",
                               f"--mode live refused: {why}; enable storage live migration in KubeVirt, "
                               "or use --mode offline (VMs are stopped during the copy)")]
    return False, [_finding("live-migration", "warning",
                            f"falling back to offline: {why}; running VMs will be stopped during the copy")]


def build_plan(inventory: dict, vm_keys: Iterable[str], target_sc: str, mode: str = "auto",
               capabilities: Optional[dict] = None, access_mode: Optional[str] = None,
               volume_mode: Optional[str] = None, naming: Optional[Callable[[dict], str]] = None) -> dict:
    """The per-disk moves for the chosen VMs (``vm_keys``: '<ns>/<name>' as in the inventory)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    naming = naming or (lambda d: f"{d['claim']}-{target_sc}")
    live, findings = resolve_mode(mode, capabilities)
    vm_keys = list(vm_keys)
    namespaces = sorted({k.split("/", 1)[0] for k in vm_keys})
    if len(namespaces) > 1:
        findings.append(_finding("namespace", "error",
                                 f"the VMs are in several namespaces ({', '.join(namespaces)}); "
                                 "migrate one namespace at a time (-n NAMESPACE)"))
    moves, skipped, seen_claims = [], [], {}
    target_binding = ((inventory.get("storageClasses") or {}).get(target_sc) or {}).get("volumeBindingMode")
    vms = []
    for k in vm_keys:
        facts = inventory["vms"].get(k)
        if facts is None:
            findings.append(_finding("vm-exists", "error", f"VirtualMachine {k} not found; check the name and -n"))
            continue
        vms.append(facts["name"])
        for d in facts["disks"]:
            where = {"vm": d["vm"], "volume": d["volume"], "claim": d["claim"]}
            if not d["claim"]:
                skipped.append(dict(where, reason="volume names no claim"))
                continue
            if d["storageClass"] == target_sc:
                skipped.append(dict(where, reason=f"already on StorageClass {target_sc}"))
                continue
            if d["claim"] in seen_claims:
                findings.append(_finding("shared-claim", "warning",
                                         f"PVC {d['claim']} is used by {seen_claims[d['claim']]} and "
                                         f"{d['vm']}/{d['volume']}; it is moved once"))
                continue
            seen_claims[d["claim"]] = f"{d['vm']}/{d['volume']}"
            disk_mode = "live" if live and facts["running"] else "offline"
            moves.append({
                "vm": d["vm"], "namespace": d["namespace"], "volume": d["volume"], "kind": d["kind"],
                "dataVolumeTemplateIndex": d["dataVolumeTemplateIndex"],
                "sourcePVC": d["claim"], "targetPVC": naming(d),
                "sourceSC": d["storageClass"], "targetSC": target_sc, "mode": disk_mode,
                "size": d["size"], "sizeBytes": d["sizeBytes"],
                "accessModes": d["accessModes"], "volumeMode": d["volumeMode"],
                "targetAccessMode": access_mode,
                "targetVolumeMode": volume_mode or d["volumeMode"],
                # WaitForFirstConsumer destinations need a consumer (or CDI's immediate binding) to be copied
                "targetBindingMode": target_binding,
            })
    return {
        "namespace": namespaces[0] if len(namespaces) == 1 else None,
        "vms": vms, "targetStorageClass": target_sc, "requestedMode": mode,
        "mode": "live" if live else "offline", "liveMigrate": live,
        "accessMode": access_mode, "volumeMode": volume_mode,
        "moves": moves, "skipped": skipped, "findings": findings,
    }


def moves_by_vm(plan: dict) -> dict:
    """vm name -> [moves], in plan order (the volume-swap patch is computed per VM)."""
    out = {}
    for m in plan["moves"]:
        out.setdefault(m["vm"], []).append(m)
    return out


def claim_mapping(plan: dict, vm: Optional[str] = None) -> dict:
    """source claim -> target claim for the whole plan, or for one VM."""
    return {m["sourcePVC"]: m["targetPVC"] for m in plan["moves"] if vm is None or m["vm"] == vm}
