"""kubeconfig loading the way kubectl does it: KUBECONFIG merge, context selection, flag overrides.

Pure apart from reading the files named by the user; returns a ``ClusterAccess`` that ``kube.py`` turns
into HTTP connections. kubectl's merge rule: for ``clusters``/``users``/``contexts`` the first file that
defines a name wins; ``current-context`` comes from the first file that sets it.
"""
import base64
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .errors import BadInput


@dataclass
class ConnectionOptions:
    """kubectl's connection flags (genericclioptions.ConfigFlags) as given on the command line."""

    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    cluster: Optional[str] = None
    user: Optional[str] = None
    namespace: Optional[str] = None
    server: Optional[str] = None
    token: Optional[str] = None
    as_user: Optional[str] = None
    as_groups: Tuple[str, ...] = ()
    as_uid: Optional[str] = None
    request_timeout: Optional[str] = None
    insecure_skip_tls_verify: bool = False
    certificate_authority: Optional[str] = None
    client_certificate: Optional[str] = None
    client_key: Optional[str] = None
    tls_server_name: Optional[str] = None
    verbosity: int = 0


@dataclass
class ClusterAccess:
    """Everything needed to talk to one API server as one user."""

    server: str
    context: Optional[str] = None
    namespace: str = "default"
    namespace_explicit: bool = False
    ca_file: Optional[str] = None
    ca_data: Optional[bytes] = None
    insecure: bool = False
    tls_server_name: Optional[str] = None
    token: Optional[str] = None
    token_file: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    client_cert_file: Optional[str] = None
    client_cert_data: Optional[bytes] = None
    client_key_file: Optional[str] = None
    client_key_data: Optional[bytes] = None
    exec_config: Optional[dict] = None
    impersonate_user: Optional[str] = None
    impersonate_groups: Tuple[str, ...] = ()
    impersonate_uid: Optional[str] = None
    timeout: Optional[float] = None
    extra: dict = field(default_factory=dict)


def kubeconfig_paths(explicit):
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def _load_yaml(path):
    import yaml

    try:
        with open(path, "rb") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise BadInput(f"kubeconfig {path} is not valid YAML ({where.strip() or 'parse error'})",
                       "fix the file or point --kubeconfig/KUBECONFIG at a valid one") from None
    except OSError as exc:
        raise BadInput(f"cannot read kubeconfig {path}: {exc.strerror}", "check the path and its permissions")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"kubeconfig {path} is not a kubeconfig (top level is not a mapping)",
                       "point --kubeconfig/KUBECONFIG at a kubeconfig file")
    return data


def merge_kubeconfigs(paths, explicit=False):
    """Merge kubeconfig files with kubectl's first-wins rule. Relative paths resolve per file."""
    merged = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None, "found": []}
    for path in paths:
        data = _load_yaml(path)
        if data is None:
            if explicit:
                raise BadInput(f"kubeconfig {path} does not exist", "check --kubeconfig")
            continue
        merged["found"].append(path)
        base = os.path.dirname(os.path.abspath(path))
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise BadInput(f"kubeconfig {path}: '{section}' must be a list", "fix the kubeconfig file")
            for entry in entries:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise BadInput(f"kubeconfig {path}: an entry of '{section}' has no name", "fix the kubeconfig file")
                body = dict(entry.get(key) or {})
                body["__base__"] = base
                merged[section].setdefault(entry["name"], body)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _resolve(base, path):
    if path and not os.path.isabs(path):
        return os.path.join(base, path)
    return path


def _b64(value, what):
    try:
        return base64.b64decode(value)
    except Exception:
        raise BadInput(f"kubeconfig {what} is not valid base64", "fix the kubeconfig file") from None


def parse_timeout(text):
    """kubectl's --request-timeout: '0' (none), a bare number of seconds, or a Go duration like 30s/1m."""
    if text in (None, "", "0"):
        return None
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    try:
        return float(text)
    except ValueError:
        pass
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not num:
            raise BadInput(f"invalid --request-timeout {text!r}", "use a duration such as 30s, 1m or 0 for none")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        raise BadInput(f"invalid --request-timeout {text!r}", "use a duration such as 30s, 1m or 0 for none")
    return total or None


def resolve_access(opts: ConnectionOptions) -> ClusterAccess:
    """Pick context/cluster/user from the merged kubeconfig and apply the command-line overrides."""
    paths = kubeconfig_paths(opts.kubeconfig)
    merged = merge_kubeconfigs(paths, explicit=bool(opts.kubeconfig))
    ctx_name = opts.context or merged["current-context"]
    ctx = {}
    if ctx_name:
        if ctx_name not in merged["contexts"]:
            if opts.context or not opts.server:
                raise BadInput(f"context {ctx_name!r} not found in kubeconfig",
                               "list contexts with 'kubectl config get-contexts' and pass --context")
        ctx = merged["contexts"].get(ctx_name, {})
    cluster_name = opts.cluster or ctx.get("cluster")
    user_name = opts.user or ctx.get("user")
    cluster = merged["clusters"].get(cluster_name, {}) if cluster_name else {}
    if opts.cluster and cluster_name not in merged["clusters"]:
        raise BadInput(f"cluster {cluster_name!r} not found in kubeconfig", "check --cluster")
    user = merged["users"].get(user_name, {}) if user_name else {}
    if opts.user and user_name not in merged["users"]:
        raise BadInput(f"user {user_name!r} not found in kubeconfig", "check --user")

    server = opts.server or cluster.get("server")
    if not server:
        where = ", ".join(paths)
        raise BadInput(f"no cluster configured (no server in kubeconfig {where})",
                       "set KUBECONFIG or --kubeconfig, or start the local sandbox with 'make sandbox'")
    if "://" not in server:
        server = "https://" + server
    cbase = cluster.get("__base__", os.getcwd())
    ubase = user.get("__base__", os.getcwd())
    acc = ClusterAccess(server=server.rstrip("/"), context=ctx_name)
    ns = opts.namespace or ctx.get("namespace")
    acc.namespace = ns or "default"
    acc.namespace_explicit = bool(opts.namespace)

    acc.insecure = bool(opts.insecure_skip_tls_verify or cluster.get("insecure-skip-tls-verify"))
    if opts.certificate_authority:
        acc.ca_file = opts.certificate_authority
    elif cluster.get("certificate-authority-data"):
        acc.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data")
    elif cluster.get("certificate-authority"):
        acc.ca_file = _resolve(cbase, cluster["certificate-authority"])
    acc.tls_server_name = opts.tls_server_name or cluster.get("tls-server-name")

    if opts.token:
        acc.token = opts.token
    else:
        acc.token = user.get("token")
        acc.token_file = _resolve(ubase, user.get("tokenFile"))
        acc.username, acc.password = user.get("username"), user.get("password")
        acc.exec_config = user.get("exec")
    if opts.client_certificate:
        acc.client_cert_file = opts.client_certificate
    elif user.get("client-certificate-data"):
        acc.client_cert_data = _b64(user["client-certificate-data"], "client-certificate-data")
    elif user.get("client-certificate"):
        acc.client_cert_file = _resolve(ubase, user["client-certificate"])
    if opts.client_key:
        acc.client_key_file = opts.client_key
    elif user.get("client-key-data"):
        acc.client_key_data = _b64(user["client-key-data"], "client-key-data")
    elif user.get("client-key"):
        acc.client_key_file = _resolve(ubase, user["client-key"])

    acc.impersonate_user = opts.as_user or user.get("as")
    acc.impersonate_groups = tuple(opts.as_groups) or tuple(user.get("as-groups") or ())
    acc.impersonate_uid = opts.as_uid or user.get("as-uid")
    if (acc.impersonate_groups or acc.impersonate_uid) and not acc.impersonate_user:
        raise BadInput("--as-group/--as-uid need --as", "add --as USER")
    acc.timeout = parse_timeout(opts.request_timeout)
    return acc
