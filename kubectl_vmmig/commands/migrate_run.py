"""The run half of ``migrate`` (and the shared read → plan → preflight used by ``check``).

Order, always: read (VMs and their volumes, cluster facts) → plan → preflight → (refuse | preview |
write). Every refusal happens before the first write, so a refused command leaves nothing behind.
"""
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .. import errors
from .. import resources as R
from ..streams import write_document

TABLES = ("table", "wide")
DATA_KINDS = ("VirtualMachine", "VirtualMachineInstance", "PersistentVolumeClaim", "DataVolume", "StorageClass",
              "Pod", "KubeVirt", "MigCluster", "MigPlan")


@dataclass
class Prepared:
    """What one command run knows after reading and judging, before any write."""
    kube: Optional[object]
    namespace: str
    engine: Optional[object] = None
    objs: Dict[str, list] = field(default_factory=dict)
    plan: Optional[dict] = None
    findings: List[dict] = field(default_factory=list)
    existing: Optional[object] = None  # engines.base.Existing: a re-run found what an earlier run made
    inventory: Optional[dict] = None


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
    if not kubevirt_served(kube):
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
    objs["StorageClass"] = storage_classes(kube)
    objs["Pod"] = kube.items(R.POD, namespace, label_selector=LAUNCHER)
    return objs


LAUNCHER = "kubevirt.io=virt-launcher"


def kubevirt_served(kube) -> bool:
    from ..kube import shared

    return shared(kube, "api kubevirt", lambda: kube.has_api("kubevirt.io", "v1"))


def storage_classes(kube) -> list:
    from ..kube import shared

    return shared(kube, "storageclasses", lambda: kube.items(R.STORAGECLASS))


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


def read_kubevirt_cr(kube, objs, local):
    """The KubeVirt CR (from the -f files with --local), None when absent or not readable."""
    if local:
        return (objs.get("KubeVirt") or [None])[0]
    if not kubevirt_served(kube):
        return None
    from ..kube import shared

    try:
        crs = shared(kube, "kubevirts", lambda: kube.items(R.KUBEVIRT, all_namespaces=True))
    except errors.Forbidden:
        return None
    return crs[0] if crs else None


def prepare(opts, conn, write=True, kube=None, objs=None) -> Prepared:
    """Read, resolve the engine, plan, judge. Raises only for bad input; blocking findings are returned.
    ``objs``: the namespace's objects by kind already LISTed (a fleet's reads across all namespaces)."""
    from .. import engines
    from ..inventory import build_inventory
    from ..kubevirt_capabilities import kubevirt_capabilities
    from ..plan import build_plan

    if opts.local:
        kube = None
        objs = read_local(opts)
        namespace = local_namespace(opts, objs)
    else:
        from ..kube import Kube

        kube = kube or Kube.connect(conn)
        namespace = opts.namespace or kube.namespace
        objs = objs if objs is not None else read_cluster(kube, namespace, opts)
    keys = choose_vms(objs, opts, namespace)
    _target_sc_must_exist(objs, opts)
    inventory = build_inventory(objs["VirtualMachine"], objs["VirtualMachineInstance"], objs["PersistentVolumeClaim"],
                                objs["DataVolume"], objs["StorageClass"], objs["Pod"])
    moving = [d for k in keys for d in inventory["vms"][k]["disks"]]
    request = opts.request()
    kv_cr = read_kubevirt_cr(kube, objs, opts.local)
    options = opts.throttle_from(kv_cr).engine_options()
    if moving and all(d["storageClass"] == opts.to for d in moving):
        if kube is not None and opts.dry_run == "none":
            vm_names = [k.split("/", 1)[1] for k in keys]
            for engine in engines.candidates(opts.engine, kube, options):
                found = engine.existing(request, namespace, vm_names)
                if found is not None:  # the same command, run again: attach or resume, create nothing new
                    return Prepared(kube=kube, namespace=namespace, engine=engine, objs=objs, plan=found.plan,
                                    existing=found)
        raise errors.BadInput(f"every disk of the chosen VMs is already on StorageClass {opts.to}",
                              "choose another --to, or other VMs")
    if not moving:
        raise errors.BadInput("the chosen VMs have no PVC or DataVolume disk to move",
                              "containerDisk/cloudInit volumes need no migration")
    engine = engines.get_engine(opts.engine, kube, options, objects=objs if opts.local else None)
    engines.refuse_unsupported(type(engine), request)  # after auto resolved: --stage on kubevirt is an error
    caps = kubevirt_capabilities(kv_cr) if (kv_cr or not opts.local) else {"liveMigration": True}
    naming = engine.naming(namespace, opts.to)
    plan = build_plan(inventory, keys, opts.to, opts.mode, caps, opts.access_mode, opts.volume_mode, naming)
    findings = engine.checks(plan, inventory, request, objs, write=write)
    return Prepared(kube=kube, engine=engine, objs=objs, namespace=namespace, plan=plan, findings=findings,
                    inventory=inventory)


# ---- output -------------------------------------------------------------------------------------
def print_findings(findings, stream):
    marks = {"ok": "ok", "warning": "WARNING", "error": "ERROR"}
    width = max([len(f["name"]) for f in findings] + [5])
    for f in findings:
        stream.write(f"{marks.get(f['severity'], f['severity']):<8} {f['name']:<{width}}  {f['message']}\n")


def print_preview(preview, output, plan, out):
    if output not in TABLES:
        write_document(preview, output, out)
        return
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


def refused(findings) -> Optional[errors.PreflightRefused]:
    """The refusal a blocking finding causes (the same for the real run, the server and the client dry run)."""
    from ..findings import blocking

    bad = blocking(findings)
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more above)" if len(bad) > 1 else ""
    return errors.PreflightRefused(f"preflight refused: {bad[0]['message']}{more}",
                                   "nothing was changed; fix the problems and re-run", findings=findings)


# ---- run ----------------------------------------------------------------------------------------
def run(opts, conn) -> None:
    """migrate: preview or write. Every failure is an exception (exits.report turns it into the exit code)."""
    prep = prepare(opts, conn, write=True)
    if prep.existing is not None and prep.existing.ref is not None:
        opts.streams.say(prep.existing.message)
        return after_apply(prep, prep.existing.ref, opts)
    if judge(prep, opts):
        return None
    confirm_hazard(prep, opts)
    return start(prep, opts)


def judge(prep, opts) -> bool:
    """Before any write: the client dry run's preview (True: done), or the refusal; the warnings."""
    streams, engine, plan = opts.streams, prep.engine, prep.plan
    if opts.dry_run == "client":
        preview = engine.preview(plan, opts.request(), prep.objs, prep.findings)
        print_preview(preview, opts.output, plan, streams.out)
        refusal = refused(preview["checks"])
        if refusal is not None:  # exit 3, as the server dry run and the real run would
            raise refusal
        return True
    refusal = refused(prep.findings)
    if refusal is not None:
        print_findings(prep.findings, streams.err)
        raise refusal
    for f in prep.findings:
        if f["severity"] == "warning" and f["name"] != "quiesce":
            streams.say(f"warning: {f['message']}")
    return False


def start(prep, opts) -> None:
    """The writes (after judge and the confirmation), then follow with --wait."""
    engine, plan, request = prep.engine, prep.plan, opts.request()
    follower = _follower(prep, opts)
    if follower is None:
        ref = engine.apply(plan, request, opts.streams.say)
        return after_apply(prep, ref, opts)
    from ..view.follow import ViewEvents

    def fetch(migration):
        return [m for m in engine.read(namespace=prep.namespace) if m.get("plan") == migration]

    with follower:  # a resize re-lays the view while an engine drives the migration in apply (kubevirt)
        ref = engine.apply(plan, request, ViewEvents(follower, fetch))
        return after_apply(prep, ref, opts, follower)


def _follower(prep, opts):
    """The live view for --wait (None for --detach and the server dry run); disk sizes from the plan."""
    if not opts.wait or opts.dry_run == "server":
        return None
    from ..view.follow import Follower

    sizes = {(mv["vm"], mv["sourcePVC"]): mv.get("sizeBytes") for mv in (prep.plan or {}).get("moves") or []}

    def enrich(ms):
        for m in ms:
            for d in m.get("disks") or []:
                if sizes.get((d.get("vm"), d.get("sourcePVC"))):
                    d.setdefault("_sizeBytes", sizes[(d.get("vm"), d.get("sourcePVC"))])
        return ms

    return Follower(out=opts.streams.out, err=opts.streams.err, output=opts.output, enrich=enrich)


def hazards(prep, opts) -> List[str]:
    """What the run stops: MTC's cutover quiesces the namespace; --stop stops running VMs (kubevirt)."""
    from ..view.summary import stops_vms

    out = [f["message"] for f in prep.findings if f["name"] == "quiesce"]
    return out + stops_vms(prep.plan, getattr(prep, "inventory", None) or {}, opts.stop)


def confirm_hazard(prep, opts, found=None, plans=None):
    """Before anything that stops workloads or VMs: the plan table(s) and the hazards, then the question
    (``found``/``plans``: a fleet's, asked once for every namespace)."""
    found = hazards(prep, opts) if found is None else found
    if not found or opts.yes or opts.dry_run == "server":
        return
    from ..view.follow import style_for, use_tty
    from ..view.summary import confirmation
    from ..view.terminal import terminal_size

    err = opts.streams.err
    width = terminal_size(err)[0] if use_tty(err) else None
    plans = plans or [prep.plan]
    lines = [line for p in plans[:-1] for line in confirmation(p, [], width, style_for(err))]
    err.write("\n".join(lines + confirmation(plans[-1], found, width, style_for(err))) + "\n")
    err.flush()
    if opts.streams.interactive():
        import click

        if click.confirm("Continue?", default=False, err=True):
            return
        raise errors.PreflightRefused("not confirmed; nothing was changed", None)
    raise errors.PreflightRefused("the run stops the workloads or VMs listed above",
                                  "re-run with --yes to confirm (nothing was changed)")


def after_apply(prep, ref, opts, follower=None) -> None:
    from .. import progress as P

    streams = opts.streams
    ref = ref if isinstance(ref, dict) else {"migration": str(ref)}
    if opts.dry_run == "server":
        streams.say("server dry run: the API server accepted the objects; nothing was persisted")
        if opts.output not in TABLES:
            write_document(ref, opts.output, streams.out)
        return
    plan_name = ref.get("plan") or ref.get("migration")
    hint = f"kubectl vm-storage status {plan_name} -n {prep.namespace} -w"
    if not opts.wait:
        if opts.output in TABLES:
            streams.out.write(f"migration {ref.get('migration')} started; follow it with: {hint}\n")
        else:
            write_document(ref, opts.output, streams.out)
        return
    from .. import render

    engine = prep.engine

    def fetch():
        ms = [m for m in engine.read(namespace=prep.namespace) if m.get("plan") == plan_name]
        # an engine that lists a plan's earlier runs too (MTC) tags each with ``_migration``: follow this run only
        return [m for m in ms if m.get("_migration") in (None, ref.get("migration"))]

    try:
        final = render.follow(fetch, output=opts.output, out=streams.out, err=streams.err,
                              follower=follower or _follower(prep, opts))
    except errors.Interrupted as exc:
        raise errors.Interrupted(exc.message, hint=f"re-attach with: {hint}") from None
    # The engine's one verdict made ``result`` (the same that ``status`` shows).
    result = final[-1]["result"] if final else P.RUNNING
    if result == P.SUCCEEDED:
        return
    if result == P.CANCELED:
        raise errors.MigrationCanceled(f"migration {ref.get('migration')} was canceled", None)
    if final and final[-1].get("_verdict"):  # the engine's verdict names the disks and the VMs' real state
        raise errors.MigrationFailed(f"migration {ref.get('migration')} {result.lower()}: {final[-1]['_verdict']}",
                                     f"details: {hint.replace(' -w', '')}")
    failed = [f"{d['vm']}/{d['volume']}: {d.get('message') or d['phase']}" for d in P.failed_disks(final[-1])] \
        if final else []
    raise errors.MigrationFailed(f"migration {ref.get('migration')} {result.lower()}"
                                 + (": " + "; ".join(failed) if failed else ""), f"details: {hint.replace(' -w', '')}")
