"""Dynamic shell-completion candidates (namespaces, VMs, StorageClasses, plans).

Each source asks the API server with a short timeout and fails softly: a completion must never print a
traceback or hang the shell. Only imported when a completion actually needs cluster data.
"""
import os

from click.shell_completion import CompletionItem

TIMEOUT = float(os.environ.get("VMSTORAGE_COMPLETION_TIMEOUT", "2"))


def _conn_from_ctx(ctx):
    from .kubeconfig import ConnectionOptions

    p = {}
    c = ctx
    while c is not None:  # flags typed so far (e.g. --kubeconfig, -n) live on the command's context
        for k, v in (c.params or {}).items():
            p.setdefault(k, v)
        c = c.parent
    return ConnectionOptions(kubeconfig=p.get("kubeconfig"), context=p.get("context"), cluster=p.get("cluster"),
                             user=p.get("user"), server=p.get("server"), token=p.get("token"),
                             namespace=p.get("namespace"), as_user=p.get("as_user"),
                             as_groups=tuple(p.get("as_groups") or ()),
                             insecure_skip_tls_verify=bool(p.get("insecure_skip_tls_verify")),
                             certificate_authority=p.get("certificate_authority"),
                             client_certificate=p.get("client_certificate"), client_key=p.get("client_key"),
                             tls_server_name=p.get("tls_server_name"))


def _names(ctx, res_name, incomplete, namespaced=True, describe=None):
    try:
        from . import resources
        from .kube import Kube

        kube = Kube.connect(_conn_from_ctx(ctx), retries=0)
        kube.access.timeout = TIMEOUT
        res = getattr(resources, res_name)
        items = kube.items(res) if namespaced else kube.items(res)
    except Exception:
        return []
    out = []
    for it in items:
        name = it.get("metadata", {}).get("name", "")
        if name.startswith(incomplete):
            out.append(CompletionItem(name, help=describe(it) if describe else None))
    return out


def complete_namespaces(ctx, param, incomplete):
    return _names(ctx, "NAMESPACE", incomplete, namespaced=False)


def complete_storageclasses(ctx, param, incomplete):
    def desc(sc):
        default = sc.get("metadata", {}).get("annotations", {}).get(
            "storageclass.kubernetes.io/is-default-class") == "true"
        return (sc.get("provisioner", "") + (" (default)" if default else "")).strip()

    return _names(ctx, "STORAGECLASS", incomplete, namespaced=False, describe=desc)


def complete_vms(ctx, param, incomplete):
    def desc(vm):
        return (vm.get("status") or {}).get("printableStatus", "")

    return _names(ctx, "VM", incomplete, describe=desc)


def complete_plans(ctx, param, incomplete):
    return _names(ctx, "MIGPLAN", incomplete)
