"""The RFC 6902 JSON patches that swap a VirtualMachine's disks to new claims (pure, dicts in, ops out).

One function computes the volume swap for both engines: the MTC engine shows it in its dry-run preview,
the kubevirt engine applies it. KubeVirt's contract (kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go
handleVolumeUpdateRequest; pkg/virt-controller/watch/volume-migration/volume-migration.go updatedVolumesMapping,
ValidateVolumes, VolumeMigrationCancel):

* keep every volume *name*, change only ``dataVolume.name`` / ``persistentVolumeClaim.claimName``;
* ``spec.updateVolumesStrategy: Migration`` for a live move (nothing for an offline move);
* rename the ``dataVolumeTemplates`` entry that created the old claim in the same request (admission
  refuses a template no volume references);
* cancel = restore *exactly* the original claim of every migrated volume.

Every patch starts with ``test`` ops on what it was computed from, so a concurrent edit of the VM makes
the API server refuse the patch (422) instead of the plugin overwriting it. The guard is
``metadata.generation`` (bumped by spec changes only) plus the volume names and current claim names.
``metadata.resourceVersion`` is deliberately *not* tested: virt-controller rewrites the VM status all the
time, which would make every patch fail spuriously and would make the ``--dry-run=client`` patch differ
from the one a real run applies a moment later.

``mapping`` is always ``{source claim name: destination claim name}`` (claim = DataVolume/PVC name).
"""
from typing import Dict, List, Optional

STRATEGY_PATH = "/spec/updateVolumesStrategy"
MIGRATION = "Migration"


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def claim_field(volume: dict) -> Optional[tuple]:
    """(source key, field, claim name) of a volume backed by a DataVolume or PVC, else None.

    containerDisk, cloudInit*, configMap, secret, emptyDisk, hostDisk, ... have no claim and are never
    touched (libvirt copies generated disks by itself during a block migration)."""
    if isinstance(volume.get("dataVolume"), dict) and volume["dataVolume"].get("name"):
        return ("dataVolume", "name", volume["dataVolume"]["name"])
    pvc = volume.get("persistentVolumeClaim")
    if isinstance(pvc, dict) and pvc.get("claimName"):
        return ("persistentVolumeClaim", "claimName", pvc["claimName"])
    return None


def claim_of(volume: dict) -> Optional[str]:
    found = claim_field(volume)
    return found[2] if found else None


def volume_claims(vm: dict) -> Dict[str, str]:
    """{volume name: claim name} for every DataVolume/PVC volume of the VM template (hotplugged included)."""
    out = {}
    for vol in _volumes(vm):
        claim = claim_of(vol)
        if claim:
            out[vol.get("name")] = claim
    return out


def _volumes(vm: dict) -> list:
    return (((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []


def _templates(vm: dict) -> list:
    return (vm.get("spec") or {}).get("dataVolumeTemplates") or []


def _generation_guard(vm: dict) -> List[dict]:
    gen = (vm.get("metadata") or {}).get("generation")
    if gen is None:
        return []
    return [{"op": "test", "path": "/metadata/generation", "value": gen}]


def _template_storage_class_ops(index: int, template: dict, storage_class: Optional[str]) -> List[dict]:
    """Point a renamed template at the new class, in whichever of spec.storage / spec.pvc it uses."""
    spec = template.get("spec") or {}
    for key in ("storage", "pvc"):
        if isinstance(spec.get(key), dict):
            path = f"/spec/dataVolumeTemplates/{index}/spec/{key}/storageClassName"
            if storage_class is None:
                if "storageClassName" in spec[key]:
                    return [{"op": "remove", "path": path}]
                return []
            if spec[key].get("storageClassName") == storage_class:
                return []
            return [{"op": "add", "path": path, "value": storage_class}]
    return []


def _swap_ops(vm: dict, mapping: Dict[str, str], storage_classes: Dict[str, Optional[str]],
              set_class: bool) -> List[dict]:
    """test + replace ops moving every volume whose claim is a key of ``mapping`` to its value."""
    tests: List[dict] = []
    changes: List[dict] = []
    seen = set()
    for i, vol in enumerate(_volumes(vm)):
        found = claim_field(vol)
        if not found or found[2] not in mapping:
            continue
        kind, field, old = found
        new = mapping[old]
        seen.add(old)
        base = f"/spec/template/spec/volumes/{i}"
        tests.append({"op": "test", "path": f"{base}/name", "value": vol.get("name")})
        tests.append({"op": "test", "path": f"{base}/{kind}/{field}", "value": old})
        changes.append({"op": "replace", "path": f"{base}/{kind}/{field}", "value": new})
    missing = sorted(set(mapping) - seen)
    if missing:
        raise ValueError(
            f"VM {(vm.get('metadata') or {}).get('name')!r} has no DataVolume/PVC volume with claim "
            f"{', '.join(missing)}")
    for j, tpl in enumerate(_templates(vm)):
        old = (tpl.get("metadata") or {}).get("name")
        if old not in mapping:
            continue
        base = f"/spec/dataVolumeTemplates/{j}"
        tests.append({"op": "test", "path": f"{base}/metadata/name", "value": old})
        changes.append({"op": "replace", "path": f"{base}/metadata/name", "value": mapping[old]})
        if set_class:
            changes.extend(_template_storage_class_ops(j, tpl, storage_classes.get(old)))
    return tests + changes


def volume_swap_patch(vm: dict, mapping: Dict[str, str], *, live: bool,
                      target_storage_class: Optional[str] = None, set_strategy: bool = True) -> List[dict]:
    """The JSON patch that moves the VM's volumes from the source claims to the destination claims.

    ``mapping``: ``{source claim: destination claim}``; every key must be the claim of a volume of
    ``spec.template.spec.volumes`` (ValueError otherwise). Volumes not in the mapping (containerDisk,
    cloudInit, other PVCs) are left alone. ``live`` adds ``spec.updateVolumesStrategy: Migration``
    (unless ``set_strategy`` is False); ``target_storage_class`` is written into renamed templates.
    Returns ``[]`` when the mapping is empty.
    """
    mapping = {k: v for k, v in (mapping or {}).items() if k != v}
    if not mapping:
        return []
    classes = {src: target_storage_class for src in mapping}
    ops = _generation_guard(vm) + _swap_ops(vm, mapping, classes, target_storage_class is not None)
    if live and set_strategy:
        ops.append({"op": "add", "path": STRATEGY_PATH, "value": MIGRATION})
    return ops


def revert_patch(vm: dict, mapping: Dict[str, str],
                 original_storage_classes: Optional[Dict[str, Optional[str]]] = None) -> List[dict]:
    """Cancel: point every migrated volume back at exactly its original claim (kubevirt/kubevirt
    volume-migration.go revertedToOldVolumes: only a full revert to each SourcePVCInfo.ClaimName cancels).

    ``mapping`` is the forward ``{source: destination}`` mapping that was applied; ``vm`` is the VM as
    read now. Volumes already back on their source are skipped. ``original_storage_classes``
    (``{source claim: storageClassName or None}``) restores the renamed templates' class too; without it
    the templates are only renamed back. ``updateVolumesStrategy`` is kept: KubeVirt recognises the
    revert as a cancel only while the strategy is still Migration (clear it afterwards).
    """
    claims_now = set(volume_claims(vm).values())
    inverse = {dst: src for src, dst in (mapping or {}).items() if src != dst and dst in claims_now}
    if not inverse:
        return []
    classes = {dst: (original_storage_classes or {}).get(src) for dst, src in inverse.items()}
    ops = _swap_ops(vm, inverse, classes, original_storage_classes is not None)
    return _generation_guard(vm) + ops


def clear_strategy_patch(vm: dict) -> List[dict]:
    """Remove ``spec.updateVolumesStrategy`` (KubeVirt never clears it: vm.go syncVolumeMigration only resets
    status.volumeUpdateState)."""
    current = (vm.get("spec") or {}).get("updateVolumesStrategy")
    if current is None:
        return []
    return [{"op": "test", "path": STRATEGY_PATH, "value": current},
            {"op": "remove", "path": STRATEGY_PATH}]


def template_storage_classes(vm: dict, claims) -> Dict[str, Optional[str]]:
    """{claim: storageClassName of the dataVolumeTemplate of that name} for the given claims (for revert)."""
    out: Dict[str, Optional[str]] = {}
    for tpl in _templates(vm):
        name = (tpl.get("metadata") or {}).get("name")
        if name in claims:
            spec = tpl.get("spec") or {}
            sub = spec.get("storage") if isinstance(spec.get("storage"), dict) else spec.get("pvc") or {}
            out[name] = sub.get("storageClassName")
    return out
