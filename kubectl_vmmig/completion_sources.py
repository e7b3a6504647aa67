"""Dynamic shell-completion candidates (namespaces, VMs, StorageClasses, plans).

Each source asks the API server with a short timeout and fails softly: a completion must never print a
traceback or hang the shell. This module imports only click at load time; the REST client is imported
when a completion actually needs cluster data, so static completion stays fast.

Attach them to click parameters with ``shell_complete=``:
``complete_namespaces`` (-n), ``complete_vms`` (VM name arguments), ``complete_storageclasses`` (--to),
``complete_plans`` (migration/plan names for status, cancel, rollback).
"""
import os
import threading

from click.shell_completion import CompletionItem

from . import labels

# Seconds for the whole lookup (connect + list). The shell is blocked while we wait, so keep it short.
TIMEOUT = float(os.environ.get("VMSTORAGE_COMPLETION_TIMEOUT", "2"))

MIGRATION_LABEL = labels.MIGRATION
ENGINE_LABEL = labels.ENGINE


def _params(ctx):
    """Flags typed so far (e.g. --kubeconfig, -n) on this command's context and its parents."""
    p = {}
    c = ctx
    while c is not None:
        for k, v in (c.params or {}).items():
            if v is not None:
                p.setdefault(k, v)
        c = c.parent
    return p


def _conn_from_ctx(ctx):
    from .kubeconfig import ConnectionOptions

    p = _params(ctx)
    return ConnectionOptions(kubeconfig=p.get("kubeconfig"), context=p.get("context"), cluster=p.get("cluster"),
                             user=p.get("user"), server=p.get("server"), token=p.get("token"),
                             namespace=p.get("namespace"), as_user=p.get("as_user"),
                             as_groups=tuple(p.get("as_groups") or ()), as_uid=p.get("as_uid"),
                             insecure_skip_tls_verify=bool(p.get("insecure_skip_tls_verify")),
                             certificate_authority=p.get("certificate_authority"),
                             client_certificate=p.get("client_certificate"), client_key=p.get("client_key"),
                             tls_server_name=p.get("tls_server_name"))


def _with_deadline(fn, timeout=None):
    """Run ``fn()`` in a daemon thread; give up after ``timeout`` seconds (exec credential plugins or a
    black-holed server must not freeze the shell). Any exception means "no candidates"."""
    timeout = TIMEOUT if timeout is None else timeout
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException:  # noqa: BLE001 - completion fails soft, whatever went wrong
            box["value"] = None

    t = threading.Thread(target=target, name="vm-storage-completion", daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return box.get("value")


def _import_client():
    """Import the REST client before the clock starts: imports are bounded work (slow only on a cold
    bytecode cache), while the deadline exists for what can hang, the network and credential plugins."""
    from . import engines, kube, resources, transport, wire  # noqa: F401  (urllib3 only through a proxy)

    engines.classes()  # the engine surfaces complete_plans asks


def _kube(ctx):
    from .kube import Kube

    kube = Kube.connect(_conn_from_ctx(ctx), retries=0)
    kube.access.timeout = TIMEOUT
    return kube


def _items(ctx, res_name, namespaced=True, label_selector=None):
    def fetch():
        from . import resources

        kube = _kube(ctx)
        res = getattr(resources, res_name)
        if namespaced:
            return kube.items(res, kube.namespace, label_selector=label_selector)
        return kube.items(res, label_selector=label_selector)

    try:
        _import_client()
    except Exception:  # noqa: BLE001
        return []
    return _with_deadline(fetch) or []


def _candidates(pairs, incomplete):
    """(name, description) pairs -> sorted, de-duplicated CompletionItems starting with ``incomplete``."""
    seen, out = set(), []
    for name, desc in sorted(pairs, key=lambda nd: nd[0]):
        if name and name.startswith(incomplete) and name not in seen:
            seen.add(name)
            out.append(CompletionItem(name, help=desc or None))
    return out


def _name(obj):
    return (obj.get("metadata") or {}).get("name", "")


def complete_namespaces(ctx, param, incomplete):
    items = _items(ctx, "NAMESPACE", namespaced=False)
    return _candidates([(_name(ns), (ns.get("status") or {}).get("phase", "")) for ns in items], incomplete)


def storageclass_description(sc):
    """'<provisioner> (default)' — what a user needs to pick a destination class."""
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    default = "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                         annotations.get("storageclass.beta.kubernetes.io/is-default-class"))
    return (sc.get("provisioner", "") + (" (default)" if default else "")).strip()


def complete_storageclasses(ctx, param, incomplete):
    items = _items(ctx, "STORAGECLASS", namespaced=False)
    return _candidates([(_name(sc), storageclass_description(sc)) for sc in items], incomplete)


def complete_vms(ctx, param, incomplete):
    items = _items(ctx, "VM")
    return _candidates([(_name(vm), (vm.get("status") or {}).get("printableStatus", "")) for vm in items],
                       incomplete)


def plan_candidates(objects, engine=""):
    """Migration names from what an engine created (its ``completion_objects``): MIGRATION_LABEL, else the
    object's name; described by ENGINE_LABEL, else the engine whose objects these are."""
    pairs = []
    for obj in objects:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = labels.get(MIGRATION_LABEL) or _name(obj)
        made_by = labels.get(ENGINE_LABEL) or engine
        pairs.append((name, f"engine {made_by}" if made_by else ""))
    return pairs


def complete_plans(ctx, param, incomplete):
    def fetch():
        from . import engines, errors

        kube = _kube(ctx)
        found = []
        for name, cls in engines.classes():
            try:  # an engine's API may be absent on a cluster (no MTC, or no CDI)
                found += plan_candidates(cls.completion_objects(kube), name)
            except errors.ApiError:
                continue
        return found

    try:
        _import_client()
    except Exception:  # noqa: BLE001
        return []
    return _candidates(_with_deadline(fetch) or [], incomplete)
