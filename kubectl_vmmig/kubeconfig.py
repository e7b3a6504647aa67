"""kubeconfig loading the way kubectl (client-go tools/clientcmd) does it: merge, precedence, validation.

Pure apart from reading the files named by the user; returns a ``ClusterAccess`` that ``transport.py`` and
``credentials.py`` turn into HTTP connections. Each rule cites the clientcmd function it follows.

Why not the kubernetes package's loader (kubernetes.config.kube_config): importing it costs ~440 ms (it
imports the whole generated client), over the start-up budget of ``version``/``status``, and measured on
the parity suite (tests/parity) it differs from kubectl where it matters: it accepts duplicate names and
any ``kind``, lets ``token`` win over ``tokenFile``, ignores ``--certificate-authority`` clearing
``insecure-skip-tls-verify``, keeps ``tls-server-name`` under ``-s``, runs exec plugins from the cwd with
no interactiveMode/installHint and even when a client certificate is set. Only the oidc auth-provider goes
through it (credentials.py), lazily.
"""
import base64
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from .errors import BadInput

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"  # clientcmd clusterExtensionKey


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
    """Everything needed to talk to one API server as one user (no URL userinfo: see ``split_userinfo``)."""

    server: str
    context: Optional[str] = None
    cluster_name: Optional[str] = None
    user_name: Optional[str] = None
    user_file: Optional[str] = None       # the kubeconfig file the user came from (oidc token refresh)
    namespace: str = "default"
    namespace_explicit: bool = False
    ca_file: Optional[str] = None
    ca_data: Optional[bytes] = None
    insecure: bool = False
    tls_server_name: Optional[str] = None
    proxy_url: Optional[str] = None
    disable_compression: bool = False
    token: Optional[str] = None
    token_file: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    client_cert_file: Optional[str] = None
    client_cert_data: Optional[bytes] = None
    client_key_file: Optional[str] = None
    client_key_data: Optional[bytes] = None
    exec_config: Optional[dict] = None    # command already resolved against the kubeconfig's folder
    exec_cluster_config: Optional[object] = None
    auth_provider: Optional[dict] = None
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
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInput(f"cannot read kubeconfig {path}: {exc.strerror}", "check the path and its permissions")
    from . import kubeconfig_yaml

    try:
        data = kubeconfig_yaml.load(raw)  # kubectl's own block style, read exactly as PyYAML would
    except kubeconfig_yaml.Unsupported:
        data = _pyyaml(path, raw)
    return _check_kind(path, data)


def _pyyaml(path, raw):
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise BadInput(f"kubeconfig {path} is not valid YAML ({where.strip() or 'parse error'})",
                       "fix the file or point --kubeconfig/KUBECONFIG at a valid one") from None


def _check_kind(path, data):
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"kubeconfig {path} is not a kubeconfig (top level is not a mapping)",
                       "point --kubeconfig/KUBECONFIG at a kubeconfig file")
    # clientcmd.Load decodes with the default v1/Config: absent apiVersion/kind are fine, others are refused.
    api_version, kind = data.get("apiVersion") or "v1", data.get("kind") or "Config"
    if (api_version, kind) != ("v1", "Config"):
        raise BadInput(f"kubeconfig {path} is a {kind} of {api_version}, not a kubeconfig (kind: Config, "
                       "apiVersion: v1)", "point --kubeconfig/KUBECONFIG at a kubeconfig file")
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
        # clientcmd ResolveLocalPaths: relative to the folder of the file as named (a symlink's own folder).
        base = os.path.dirname(os.path.abspath(path))
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise BadInput(f"kubeconfig {path}: '{section}' must be a list", "fix the kubeconfig file")
            seen = set()
            for entry in entries:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise BadInput(f"kubeconfig {path}: an entry of '{section}' has no name", "fix the kubeconfig file")
                # api/v1 conversion (Convert_Slice_v1_NamedAuthInfo_To_Map...) refuses a name twice in one file
                # (kubectl's message prints the entries, secrets included; this one names only the name).
                if entry["name"] in seen:
                    raise BadInput(f"kubeconfig {path}: duplicate {key} name {entry['name']!r} in '{section}'",
                                   "give every entry a unique name")
                seen.add(entry["name"])
                body = dict(entry.get(key) or {})
                body["__base__"], body["__file__"] = base, path
                merged[section].setdefault(entry["name"], body)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def _resolve(base, path):
    if path and not os.path.isabs(path):
        return os.path.normpath(os.path.join(base, path))  # filepath.Join cleans the path (ResolvePaths)
    return path


def _b64(value, what):
    try:
        return base64.b64decode(value, validate=True)
    except Exception:
        raise BadInput(f"kubeconfig {what} is not valid base64", "fix the kubeconfig file") from None


def split_userinfo(url):
    """(url without user:password@, whether there was one): userinfo is never printed or sent."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, False
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), True


def parse_timeout(text):
    """kubectl's --request-timeout, as client-go's clientcmd.ParseTimeout reads it: a non-negative integer is
    seconds (strconv.ParseInt), anything else a Go duration (time.ParseDuration: 30s, 1m30s, 1.5h, 250ms, 1ns;
    a bare 0 too). None = no timeout ('0', or a negative duration: http.Client applies only a positive one)."""
    import re

    from .go_duration import parse_seconds

    if text in (None, ""):
        return None
    if re.fullmatch(r"[+-]?[0-9]+", text) and int(text) >= 0:  # ParseInt takes a sign; a negative one falls through
        return float(int(text)) or None
    seconds = parse_seconds(text)
    if seconds is None:
        raise BadInput(f"invalid --request-timeout {text!r}", "use a duration such as 30s, 1m or 0 for none")
    return seconds if seconds > 0 else None


def _pick(merged, opts):
    """clientcmd DirectClientConfig.getContext/getAuthInfo/getCluster + ConfirmUsable's context check."""
    ctx_name = opts.context or merged["current-context"]
    if opts.context and opts.context not in merged["contexts"]:  # kubectl names a missing --context first
        raise BadInput(f"context {opts.context!r} not found in kubeconfig",
                       "list contexts with 'kubectl config get-contexts' and pass --context")
    if opts.user and opts.user not in merged["users"]:
        raise BadInput(f"user {opts.user!r} not found in kubeconfig", "check --user")
    ctx = merged["contexts"].get(ctx_name, {}) if ctx_name else {}
    if opts.cluster and opts.cluster not in merged["clusters"]:
        raise BadInput(f"cluster {opts.cluster!r} not found in kubeconfig", "check --cluster")
    # ConfirmUsable: a current-context that names no context is an error even when -s/--token are given.
    if ctx_name and ctx_name not in merged["contexts"]:
        raise BadInput(f"context {ctx_name!r} not found in kubeconfig",
                       "list contexts with 'kubectl config get-contexts' and pass --context")
    cluster_name, user_name = opts.cluster or ctx.get("cluster"), opts.user or ctx.get("user")
    return ctx_name, ctx, cluster_name, merged["clusters"].get(cluster_name, {}), \
        user_name, merged["users"].get(user_name, {})


def _tls(acc, opts, cluster, cbase, cluster_name):
    """getCluster's override rules, then validateClusterInfo and transport.TLSConfigFor's checks."""
    acc.insecure = bool(cluster.get("insecure-skip-tls-verify"))
    if cluster.get("certificate-authority-data") and cluster.get("certificate-authority"):
        raise BadInput(f"certificate-authority-data and certificate-authority are both specified for cluster "
                       f"{cluster_name!r}", "keep one of them in the kubeconfig")
    if cluster.get("certificate-authority-data"):
        acc.ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data")
    elif cluster.get("certificate-authority"):
        acc.ca_file = _resolve(cbase, cluster["certificate-authority"])
    # --insecure-skip-tls-verify or --certificate-authority replaces all three kubeconfig settings.
    if opts.insecure_skip_tls_verify or opts.certificate_authority:
        acc.insecure, acc.ca_file, acc.ca_data = bool(opts.insecure_skip_tls_verify), opts.certificate_authority, None
    if acc.insecure and (acc.ca_file or acc.ca_data):
        raise BadInput("specifying a root certificates file with the insecure flag is not allowed",
                       "drop insecure-skip-tls-verify or the certificate authority from the kubeconfig/flags")
    if acc.ca_file and not os.path.isfile(acc.ca_file):
        raise BadInput(f"cannot load certificate authority {acc.ca_file}: no such file",
                       "check --certificate-authority or the kubeconfig")
    # -s clears the kubeconfig's tls-server-name unless --tls-server-name is given too.
    acc.tls_server_name = cluster.get("tls-server-name")
    if opts.tls_server_name or opts.server:
        acc.tls_server_name = opts.tls_server_name
    proxy = cluster.get("proxy-url")
    if proxy:
        scheme = urlsplit(proxy).scheme
        if scheme not in ("http", "https", "socks5"):  # clientcmd parseProxyURL
            raise BadInput(f"invalid 'proxy-url' for cluster {cluster_name!r}: unsupported scheme {scheme!r}, "
                           "must be http, https, or socks5", "fix proxy-url in the kubeconfig")
        acc.proxy_url = proxy
    acc.disable_compression = bool(cluster.get("disable-compression"))


def _exec_config(spec, ubase, user_name):
    """validateAuthInfo's exec rules; ResolveLocalPaths resolves a command containing '/' per file."""
    spec = dict(spec)
    problems = []
    if not spec.get("command"):
        problems.append("command must be specified")
    if spec.get("apiVersion") not in EXEC_API_VERSIONS:
        problems.append(f"apiVersion must be one of {', '.join(EXEC_API_VERSIONS)}"
                        if spec.get("apiVersion") else "apiVersion must be specified")
    mode = spec.get("interactiveMode")
    if not mode and spec.get("apiVersion", "").endswith("/v1beta1"):
        mode = "IfAvailable"  # api/v1beta1 defaults: SetDefaults_ExecConfig
    if not mode:
        problems.append("interactiveMode must be specified")
    elif mode not in ("Never", "IfAvailable", "Always"):
        problems.append(f"invalid interactiveMode {mode!r}")
    if problems:
        raise BadInput(f"exec credential plugin of user {user_name!r}: {'; '.join(problems)}",
                       "fix the user's exec section in the kubeconfig")
    spec["interactiveMode"] = mode
    if "/" in spec["command"]:
        spec["command"] = _resolve(ubase, spec["command"])
    return spec


def _credentials(acc, opts, user, ubase, user_name):
    """getAuthInfo (flags merged over the kubeconfig user) + getUserIdentificationPartialConfig."""
    user = dict(user)
    if opts.token:
        user["token"] = opts.token
    # Paths from flags stay relative to the cwd; the kubeconfig's are resolved against its folder.
    for flag, key in ((opts.client_certificate, "client-certificate"), (opts.client_key, "client-key")):
        if flag:
            user[key], user[key + "-data"] = os.path.abspath(flag), None
    methods = [m for m, on in (("token", user.get("token")),
                               ("basicAuth", user.get("username") or user.get("password"))) if on]
    if len(methods) > 1:
        raise BadInput(f"more than one authentication method found for user {user_name!r}: {', '.join(methods)}",
                       "keep only one of token and username/password")
    acc.token = user.get("token")
    # With tokenFile set kubectl reads the file for every request (transport CachedFileTokenSource), so the
    # file wins over token; token is only the fallback when the file cannot be read.
    acc.token_file = _resolve(ubase, user.get("tokenFile"))
    acc.username, acc.password = user.get("username"), user.get("password")
    if user.get("client-certificate-data"):
        acc.client_cert_data = _b64(user["client-certificate-data"], "client-certificate-data")
    elif user.get("client-certificate"):
        acc.client_cert_file = _resolve(ubase, user["client-certificate"])
    if user.get("client-key-data"):
        acc.client_key_data = _b64(user["client-key-data"], "client-key-data")
    elif user.get("client-key"):
        acc.client_key_file = _resolve(ubase, user["client-key"])
    if (acc.client_cert_file or acc.client_cert_data) and not (acc.client_key_file or acc.client_key_data):
        raise BadInput(f"client-key-data or client-key must be specified for user {user_name!r} to use its "
                       "client certificate", "add client-key to the kubeconfig user or pass --client-key")
    for path, what in ((acc.client_cert_file, "client-cert"), (acc.client_key_file, "client-key")):
        if path and not os.path.isfile(path):
            raise BadInput(f"unable to read {what} {path} for user {user_name!r}: no such file",
                           "check --client-certificate/--client-key or the kubeconfig")
    if user.get("exec") and user.get("auth-provider"):
        raise BadInput(f"user {user_name!r} has both auth-provider and exec", "keep one of them in the kubeconfig")
    if user.get("exec"):
        acc.exec_config = _exec_config(user["exec"], ubase, user_name)
    if user.get("auth-provider"):
        acc.auth_provider = dict(user["auth-provider"])
    acc.impersonate_user = opts.as_user or user.get("as")
    acc.impersonate_groups = tuple(opts.as_groups) or tuple(user.get("as-groups") or ())
    acc.impersonate_uid = opts.as_uid or user.get("as-uid")
    if (acc.impersonate_groups or acc.impersonate_uid) and not acc.impersonate_user:
        raise BadInput("--as-group/--as-uid need --as", "add --as USER")


def resolve_access(opts: ConnectionOptions) -> ClusterAccess:
    """Pick context/cluster/user from the merged kubeconfig and apply the command-line overrides."""
    paths = kubeconfig_paths(opts.kubeconfig)
    merged = merge_kubeconfigs(paths, explicit=bool(opts.kubeconfig))
    ctx_name, ctx, cluster_name, cluster, user_name, user = _pick(merged, opts)
    server = opts.server or cluster.get("server")
    if not server:
        if cluster_name and cluster_name not in merged["clusters"]:
            raise BadInput(f"cluster {cluster_name!r} of context {ctx_name!r} not found in kubeconfig",
                           "fix the context or pass --cluster/-s")
        where = ", ".join(paths)
        raise BadInput(f"no cluster configured (no server in kubeconfig {where})",
                       "set KUBECONFIG or --kubeconfig, or start the local sandbox with 'make sandbox'")
    if "://" not in server:
        # kubectl would pick http:// for a scheme-less server and fail against an HTTPS API server; every
        # API server serves HTTPS, so https:// is assumed (a documented difference, README "Connecting").
        server = "https://" + server
    server, _ = split_userinfo(server)
    cbase = cluster.get("__base__", os.getcwd())
    ubase = user.get("__base__", os.getcwd())
    acc = ClusterAccess(server=server.rstrip("/"), context=ctx_name, cluster_name=cluster_name,
                        user_name=user_name, user_file=user.get("__file__"))
    acc.namespace = opts.namespace or ctx.get("namespace") or "default"
    acc.namespace_explicit = bool(opts.namespace)
    _tls(acc, opts, cluster, cbase, cluster_name)
    ext = {e.get("name"): e.get("extension") for e in cluster.get("extensions") or [] if isinstance(e, dict)}
    acc.exec_cluster_config = ext.get(EXEC_CLUSTER_EXTENSION)
    if user_name and user_name not in merged["users"] and not opts.token:
        # kubectl finds no credentials and prompts for a username on stdin (error: EOF without one).
        raise BadInput(f"user {user_name!r} of context {ctx_name!r} not found in kubeconfig",
                       "fix the context's user or pass --user/--token")
    _credentials(acc, opts, user, ubase, user_name or "")
    acc.timeout = parse_timeout(opts.request_timeout)
    return acc
