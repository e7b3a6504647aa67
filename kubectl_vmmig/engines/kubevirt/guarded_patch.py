"""The kubevirt engine's one way of changing a VM (shell): a JSON patch guarded by ``test`` ops of what was read,
so a concurrent edit is never overwritten - refused, named, and left for the user to look at.

The API server answers a failed ``test`` op with a generic 422 (apimachinery jsonpatch: "testing value … failed"),
so a refusal is told apart from a real one by re-reading the VM and applying the test ops to it.
"""
from typing import List

from ... import errors
from ... import resources as R
from ...patches import volume_claims


class PatchRefused(errors.Conflict):
    """The VM changed between read and patch: the guarded patch was refused and nothing was overwritten."""


def failed_tests(vm: dict, ops: List[dict]) -> List[str]:
    """Paths of the patch's ``test`` ops that do not hold on ``vm`` (what a concurrent edit changed)."""
    import jsonpatch
    import jsonpointer

    bad = []
    for op in ops:
        if op.get("op") != "test":
            continue
        try:
            jsonpatch.JsonPatch([op]).apply(vm)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            bad.append(op["path"])
    return bad


def guarded_patch(kube, name: str, ns: str, ops: List[dict], what: str, dry_run=False) -> dict:
    """Apply a JSON patch whose ``test`` ops guard what we read. When the API server refuses it (a failed
    test op is a 422 with a generic message), re-read the VM: if a guard no longer holds, the VM was edited
    concurrently -> PatchRefused (nothing overwritten); otherwise the refusal is a real one -> re-raised."""
    try:
        return kube.patch(R.VM, name, ops, ns, patch_type="json", dry_run=dry_run)
    except (errors.Invalid, errors.Conflict) as exc:
        current = kube.get_or_none(R.VM, name, ns) or {}
        changed = failed_tests(current, ops)
        if not changed:
            raise
        gen = (current.get("metadata") or {}).get("generation")
        claims = ", ".join(f"{v}={c}" for v, c in sorted(volume_claims(current).items()))
        raise PatchRefused(
            f"VM {ns}/{name} changed after it was read, so the {what} patch was refused and nothing was "
            f"overwritten (changed: {', '.join(changed)}; now generation {gen}, volumes {claims or 'none'})",
            status=exc.status, reason=exc.reason, body=exc.body,
            hint="check who edited the VM, then re-run the command to recompute the patch "
                 "(destination DataVolumes already created are reused)") from None
