"""The run half of ``migrate`` (and the shared read → plan → preflight used by ``check``).

Order, always: read (VMs and their volumes, cluster facts) → plan → preflight → (refuse | preview |
write). Every refusal happens before the first write, so a refused command leaves nothing behind.
"""
import json
import sys
from typing import Dict, List

from .. import errors
from .. import resources as R

DATA_KINDS = ("VirtualMachine", "VirtualMachineInstance", "PersistentVolumeClaim", "DataVolume", "StorageClass",
              "Pod", "KubeVirt", "MigCluster", "MigPlan")


class Prepared:
    """Everything one command run knows: objects read, engine, inventory, plan, findings."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _ns_of(obj):
    return (obj.get("metadata") or {}).get("namespace") or ""


def read_cluster(kube, namespace, opts) -> Dict[str, list]:
    """One LIST per kind (constant number of requests whatever the number of VMs)."""
    try:
        if kube.get_or_none(R.NAMESPACE, namespace) is None:
            raise errors.NotFoundInput(f"namespace {namespace} not found", "check -n NAMESPACE")
    except errors.Forbidden:
        pass  # a namespaced user may not read Namespaces; the lists below still answer
    # Without the CRDs a GET of a VM is a plain 404: say KubeVirt is missing, not that the VM is.
    if not kube.has_api("kubevirt.io", "v1"):
        raise errors.PreflightRefused("KubeVirt is not installed (kubevirt.io/v1 VirtualMachines are not served)",
                                      "install KubeVirt first, or check the kubeconfig context")
    objs: Dict[str, list] = {}
    try:
        if opts.vms:
            objs["VirtualMachine"] = []
            for name in opts.vms:
                vm = kube.get_or_none(R.VM, name, namespace)
                if vm is None:
                    raise errors.NotFoundInput(f"VirtualMachine {name} not found in namespace {namespace}",
                                               "check the name and -n (kubectl get vm -n NAMESPACE)")
                objs["VirtualMachine"].append(vm)
        else:
            objs["VirtualMachine"] = kube.items(R.VM, namespace, label_selector=opts.selector)
        objs["VirtualMachineInstance"] = kube.items(R.VMI, namespace)
    except errors.NotFound:
        raise errors.PreflightRefused("KubeVirt is not installed (kubevirt.io/v1 VirtualMachines are not served)",
                                      "install KubeVirt first") from None
    objs["PersistentVolumeClaim"] = kube.items(R.PVC, namespace)
    try:
        objs["DataVolume"] = kube.items(R.DATAVOLUME, namespace)
    except errors.NotFound:
        objs["DataVolume"] = []  # CDI not installed: plain PVC disks still work with MTC
    objs["StorageClass"] = kube.items(R.STORAGECLASS)
    objs["Pod"] = kube.items(R.POD, namespace, label_selector="kubevirt.io=virt-launcher")
    return objs


def read_local(opts) -> Dict[str, list]:
    from .. import manifests

    objects = manifests.load_objects(opts.files)
    by = manifests.by_kind(objects)
    unknown = sorted(set(by) - set(DATA_KINDS))
    if unknown and not any(k in by for k in ("VirtualMachine",)):
        raise errors.BadInput(f"the -f files hold no VirtualMachine (found {', '.join(unknown)})",
                              "pass VMs, PVCs, DataVolumes and StorageClasses (kubectl get vm,pvc,dv,sc -o yaml)")
    objs = {k: by.get(k, []) for k in DATA_KINDS}
    if opts.selector:
        objs["VirtualMachine"] = [v for v in objs["VirtualMachine"]
                                  if manifests.match_labels((v.get("metadata") or {}).get("labels"), opts.selector)]
    return objs


def local_namespace(opts, objs) -> str:
    if opts.namespace:
        return opts.namespace
    names = set(opts.vms)
    spaces = {_ns_of(v) or "default" for v in objs["VirtualMachine"]
              if not names or (v.get("metadata") or {}).get("name") in names}
    return spaces.pop() if len(spaces) == 1 else "default"


def choose_vms(objs, opts, namespace) -> List[str]:
    vms = [v for v in objs["VirtualMachine"] if (_ns_of(v) or namespace) == namespace]
    for v in vms:
        v["metadata"].setdefault("namespace", namespace)
    if opts.vms:
        have = {v["metadata"]["name"] for v in vms}
        for name in opts.vms:
            if name not in have:
                raise errors.NotFoundInput(f"VirtualMachine {name} not found in namespace {namespace}",
                                           "check the name and -n")
        keys = [f"{namespace}/{n}" for n in dict.fromkeys(opts.vms)]
    else:
        keys = [f"{namespace}/{v['metadata']['name']}" for v in vms]
    if not keys:
        how = f"matching -l {opts.selector}" if opts.selector else "at all"
        raise errors.NotFoundInput(f"no VirtualMachine {how} in namespace {namespace}", "check -n and -l")
    return keys


def _target_sc_must_exist(objs, opts):
    names = sorted(sc["metadata"]["name"] for sc in objs["StorageClass"])
    if names and opts.to not in names:
        raise errors.NotFoundInput(f"StorageClass {opts.to} not found",
                                   f"choose one of: {', '.join(names)} (kubectl get storageclass)")


def prepare(opts, conn, write=True) -> Prepared:
    """Read, plan, judge. Raises only for bad input; blocking findings are returned, not raised."""
    from .. import kubevirt_capabilities as KVC
    from ..engines.mtc import checks as P
    from ..engines import get_engine
    from ..engines.mtc import build as B
    from ..inventory import build_inventory
    from ..plan import build_plan

    kube = None
    if opts.local:
        objs = read_local(opts)
        namespace = local_namespace(opts, objs)
    else:
        from ..kube import Kube

        kube = Kube.connect(conn)
        namespace = opts.namespace or kube.namespace
        objs = read_cluster(kube, namespace, opts)
    keys = choose_vms(objs, opts, namespace)
    _target_sc_must_exist(objs, opts)
    inventory = build_inventory(objs["VirtualMachine"], objs["VirtualMachineInstance"], objs["PersistentVolumeClaim"],
                                objs["DataVolume"], objs["StorageClass"], objs["Pod"])
    moving = [d for k in keys for d in inventory["vms"][k]["disks"]]
    if moving and all(d["storageClass"] == opts.to for d in moving):
        resumed = _resume_kubevirt(kube, namespace, keys, opts)
        if resumed is not None:
            return resumed
        done = None if opts.local or opts.dry_run != "none" else finished_migration(kube, opts, namespace, keys)
        if done is not None:  # the same command, run again after it finished: attach, create nothing
            return Prepared(kube=kube, namespace=namespace, reattach=done, objs=objs, plan=None, engine=None)
        raise errors.BadInput(f"every disk of the chosen VMs is already on StorageClass {opts.to}",
                              "choose another --to, or other VMs")
    if not moving:
        raise errors.BadInput("the chosen VMs have no PVC or DataVolume disk to move",
                              "containerDisk/cloudInit volumes need no migration")
    options = {"mtc_namespace": opts.mtc_namespace, "verify": opts.verify, "stop": opts.stop,
               "access_mode": opts.access_mode, "volume_mode": opts.volume_mode,
               "wait": bool(opts.wait), "keep_update_strategy": getattr(opts, "keep_update_strategy", False)}
    if opts.local:
        engine_name = opts.engine if opts.engine != "auto" else ("mtc" if objs.get("MigCluster") else "kubevirt")
        kv_cr = (objs.get("KubeVirt") or [None])[0]
    else:
        engine_name = None
        kv_cr = None
        if kube.has_api("kubevirt.io", "v1"):
            try:
                crs = kube.items(R.KUBEVIRT, all_namespaces=True)
                kv_cr = crs[0] if crs else None
            except errors.Forbidden:
                kv_cr = None
    engine = get_engine(engine_name or opts.engine, kube, options)
    caps = KVC.kubevirt_capabilities(kv_cr) if (kv_cr or not opts.local) else {"liveMigration": True}
    own = None
    if engine.name == "mtc" and not opts.local:
        own, _ = engine.existing_plans(namespace)
    naming = engine.naming(own) if engine.name == "mtc" else _kubevirt_naming(engine, opts)
    plan = build_plan(inventory, keys, opts.to, opts.mode, caps, opts.access_mode, opts.volume_mode, naming)
    if engine.name == "mtc":
        if opts.local:
            facts = {"engine": "mtc"}
        else:
            # write permissions are checked for previews and check too: they say what a real run would hit
            facts = engine.gather_facts(plan, opts.kind, write=write, hooks=opts.parsed_hooks)
        findings = P.run_preflight(plan, inventory, facts, opts.kind)
    else:
        facts = {}
        findings = list(plan["findings"]) + list(engine_checks(engine, plan, inventory, objs, opts))
    return Prepared(kube=kube, engine=engine, objs=objs, namespace=namespace, inventory=inventory, plan=plan,
                    facts=facts, findings=findings, mtc=B)


def finished_migration(kube, opts, namespace, keys):
    """The plugin's MTC migration that already moved these VMs to ``opts.to`` (for a re-run), else None."""
    from ..engines.mtc import build as B
    from ..engines.mtc.engine import MtcEngine

    if opts.engine == "kubevirt":
        return None
    eng = MtcEngine(kube, {"mtc_namespace": opts.mtc_namespace})
    try:
        if not eng.locate()["installed"]:
            return None
        own, _ = eng.existing_plans(namespace)
        migs = eng.migrations_of(own["metadata"]["name"]) if own else []
    except errors.ApiError:
        return None
    wanted = {k.split("/", 1)[1] for k in keys}
    for m in sorted(migs, key=lambda m: m["metadata"].get("creationTimestamp") or "", reverse=True):
        try:
            req = json.loads(((m["metadata"].get("annotations") or {}).get(B.REQUEST_ANNOTATION)) or "{}")
        except ValueError:
            continue
        if req.get("type") == opts.kind and req.get("targetStorageClass") == opts.to and wanted <= set(req.get("vms") or ()):
            return {"engine": eng, "plan": own["metadata"]["name"], "migration": m["metadata"]["name"],
                    "mtcNamespace": eng.mtc_namespace, "namespace": namespace, "created": False}
    return None


def _resume_kubevirt(kube, namespace, keys, opts):
    """The disks already point at the target because KubeVirt finished a live migration whose command was
    interrupted: re-attach to its still-Running record (cleanup, result) instead of refusing the re-run."""
    if kube is None or opts.engine == "mtc" or opts.dry_run != "none":
        return None
    from ..engines import get_engine
    from ..engines.kubevirt import build as KB

    plan = {"namespace": namespace, "vms": [k.split("/", 1)[1] for k in keys], "targetStorageClass": opts.to,
            "moves": [], "skipped": [], "findings": [], "requestedMode": opts.mode}
    cm = kube.get_or_none(R.CONFIGMAP, KB.record_name(KB.migration_name(plan)), namespace)
    rec = KB.record_from_configmap(cm) if cm else None
    if not rec or rec.get("result") != "Running":
        return None
    options = {"stop": opts.stop, "wait": bool(opts.wait), "keep_update_strategy": opts.keep_update_strategy}
    return Prepared(kube=kube, engine=get_engine("kubevirt", kube, options), objs={}, namespace=namespace,
                    inventory={}, plan=plan, facts={}, findings=[], mtc=None)


def _kubevirt_naming(engine, opts):
    fn = getattr(engine, "naming", None)
    if callable(fn):
        return fn()
    from ..engines.kubevirt.build import destination_name

    return lambda d: destination_name(d["claim"], opts.to)


def engine_checks(engine, plan, inventory, objs, opts):
    fn = getattr(engine, "checks", None)
    if callable(fn) and engine.kube is not None:
        return fn(plan, inventory)
    from ..engines.kubevirt.checks import kubevirt_engine_findings

    cluster = {"kubevirt": (objs.get("KubeVirt") or [None])[0], "stop": opts.stop,
               "storageClasses": [s["metadata"]["name"] for s in objs["StorageClass"]], "cdi": True}
    return kubevirt_engine_findings(plan, inventory, cluster)


# ---- output -------------------------------------------------------------------------------------
def print_findings(findings, stream=None):
    stream = stream or sys.stdout
    marks = {"ok": "ok", "warning": "WARNING", "error": "ERROR"}
    width = max([len(f["name"]) for f in findings] + [5])
    for f in findings:
        stream.write(f"{marks.get(f['severity'], f['severity']):<8} {f['name']:<{width}}  {f['message']}\n")


def print_preview(preview, output, plan):
    if output == "json":
        sys.stdout.write(json.dumps(preview, indent=2) + "\n")
        return
    if output == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(preview, sort_keys=False))
        return
    out = sys.stdout
    out.write(f"Plan: {len(plan['moves'])} disk(s) of {len(plan['vms'])} VM(s) in namespace {plan['namespace']} "
              f"→ StorageClass {plan['targetStorageClass']} ({plan['mode']})\n\n")
    rows = [("VM", "VOLUME", "SOURCE PVC", "TARGET PVC", "SOURCE SC", "TARGET SC", "MODE")]
    rows += [(m["vm"], m["volume"], m["sourcePVC"], m["targetPVC"], m["sourceSC"] or "", m["targetSC"], m["mode"])
             for m in plan["moves"]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    for s in plan["skipped"]:
        out.write(f"skipped: {s['vm']}/{s['volume']} ({s['claim']}): {s['reason']}\n")
    out.write("\nWould create:\n")
    for o in preview["objects"]:
        md = o["metadata"]
        out.write(f"  {o['kind']} {md.get('namespace', '')}/{md.get('name', md.get('generateName', ''))}\n")
    out.write("\nWould patch:\n")
    for p in preview["patches"]:
        out.write(f"  {p['kind']} {p['namespace']}/{p['name']}" + (f" ({p['step']})" if p.get("step") else "") + ":\n")
        for op in p["patch"]:
            out.write(f"    {json.dumps(op)}\n")
    out.write("\nChecks:\n")
    print_findings(preview["checks"], out)


def refuse_if_blocked(findings, plan):
    from ..findings import blocking

    bad = blocking(findings)
    if bad:
        print_findings(findings, sys.stderr)
        more = f" (and {len(bad) - 1} more above)" if len(bad) > 1 else ""
        raise errors.PreflightRefused(f"preflight refused: {bad[0]['message']}{more}",
                                      "nothing was changed; fix the problems and re-run", findings=findings)


# ---- run ----------------------------------------------------------------------------------------
def run(opts, conn) -> int:
    prep = prepare(opts, conn, write=True)
    if getattr(prep, "reattach", None):
        ref = dict(prep.reattach)
        prep.engine = ref.pop("engine")
        sys.stderr.write(f"already migrated: re-attaching to MigMigration {ref['mtcNamespace']}/{ref['migration']}\n")
        return after_apply(prep, ref, opts)
    plan, engine = prep.plan, prep.engine
    if opts.dry_run == "client":
        if engine.name == "mtc":
            preview = engine.preview(plan, prep.objs["VirtualMachine"], prep.objs["PersistentVolumeClaim"],
                                     opts.kind, opts.parsed_hooks, opts.verify, checks=prep.findings)
        else:
            preview = engine.preview(plan, prep.objs["VirtualMachine"], prep.objs["VirtualMachineInstance"])
            preview["checks"] = list(prep.findings) + [c for c in preview.get("checks") or []
                                                       if c not in prep.findings]
        print_preview(preview, opts.output, plan)
        from ..findings import blocking

        return errors.PREFLIGHT if blocking(preview["checks"]) else 0
    refuse_if_blocked(prep.findings, plan)
    for f in prep.findings:
        if f["severity"] == "warning" and f["name"] != "quiesce":
            sys.stderr.write(f"warning: {f['message']}\n")
    confirm_hazard(prep.findings, opts)
    if engine.name != "mtc":
        ref = engine.apply(plan, dry_run_server=opts.dry_run == "server")
        return after_apply(prep, ref, opts)
    say = (lambda m: sys.stderr.write(m + "\n")) if opts.output == "table" else None
    ref = engine.apply(plan, kind=opts.kind, hooks=opts.parsed_hooks, verify=opts.verify,
                       dry_run_server=opts.dry_run == "server", on_event=say)
    return after_apply(prep, ref, opts)


def confirm_hazard(findings, opts):
    hazard = next((f for f in findings if f["name"] == "quiesce"), None)
    if hazard is None or opts.yes or opts.dry_run == "server":
        return
    sys.stderr.write(f"warning: {hazard['message']}\n")
    if sys.stdin.isatty() and sys.stderr.isatty():
        import click

        if click.confirm("Continue?", default=False, err=True):
            return
        raise errors.PreflightRefused("not confirmed; nothing was changed", None)
    raise errors.PreflightRefused("the cutover stops the workloads listed above",
                                  "re-run with --yes to confirm (nothing was changed)")


def after_apply(prep, ref, opts) -> int:
    from .. import progress as P

    ref = ref if isinstance(ref, dict) else {"migration": str(ref)}
    if opts.dry_run == "server":
        sys.stderr.write("server dry run: the API server accepted the objects; nothing was persisted\n")
        if opts.output != "table":
            sys.stdout.write(json.dumps(ref, indent=2) + "\n")
        return 0
    plan_name = ref.get("plan") or ref.get("migration")
    hint = f"kubectl vm-storage status {plan_name} -n {prep.namespace} -w"
    if not opts.wait:
        if opts.output == "table":
            sys.stdout.write(f"migration {ref.get('migration')} started; follow it with: {hint}\n")
        else:
            sys.stdout.write(json.dumps(ref, indent=2) + "\n")
        return 0
    from .. import render

    engine = prep.engine

    def fetch():
        return [m for m in engine.read(namespace=prep.namespace) if m.get("plan") == plan_name]

    try:
        final = render.follow(fetch, output=opts.output)
    except errors.Interrupted as exc:
        raise errors.Interrupted(exc.message, hint=f"re-attach with: {hint}") from None
    result = final[0]["result"] if final else P.RUNNING
    if engine.name == "mtc" and ref.get("migration"):
        strict, message, _ = engine.result(ref["migration"])
        if strict != P.RUNNING and result == P.SUCCEEDED and strict != P.SUCCEEDED:
            result = strict  # never report success the MTC conditions do not back (SucceededWithWarnings)
    if result == P.SUCCEEDED:
        return 0
    if result == P.CANCELED:
        raise errors.MigrationCanceled(f"migration {ref.get('migration')} was canceled", None)
    failed = [f"{d['vm']}/{d['volume']}: {d.get('message') or d['phase']}" for d in P.failed_disks(final[0])] \
        if final else []
    raise errors.MigrationFailed(f"migration {ref.get('migration')} {result.lower()}"
                                 + (": " + "; ".join(failed) if failed else ""), f"details: {hint.replace(' -w', '')}")
