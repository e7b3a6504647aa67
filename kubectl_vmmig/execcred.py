"""Exec credential plugins (client.authentication.k8s.io v1/v1beta1) exactly as client-go runs them.

Follows k8s.io/client-go plugin/pkg/client/auth/exec/exec.go (isInteractive, refreshCredsLocked,
wrapCmdRunErrorLocked) and rest/exec.go (ConfigToExecCluster). Not the kubernetes package's ExecProvider:
it needs its own ConfigNode type, decides "interactive" from stdout instead of stdin, ignores
interactiveMode and installHint, swallows the plugin's stderr, gives the plugin no cluster for
provideClusterInfo, and costs ~440 ms of imports per run.

Nothing here prints the plugin's stdout: it holds the credential.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone

from . import errors

INSTALL_HELP = ("it looks like a client-go credential plugin that is not installed; see "
                "https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins")


class ExecFailed(errors.ApiError):
    """The credential plugin could not give a credential (kubectl: 'getting credentials: ...')."""


def _stdin_is_terminal():
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, ValueError, OSError):
        return False


def interactive(mode, stdin_is_terminal):
    """exec.go isInteractive: Never / IfAvailable (stdin is a terminal) / Always (must be one)."""
    if mode == "Never":
        return False
    if mode == "IfAvailable":
        return stdin_is_terminal
    if not stdin_is_terminal:
        raise ExecFailed("exec plugin cannot support interactive mode: standard input is not a terminal",
                         hint="run the command from a terminal, or set interactiveMode: IfAvailable/Never")
    return True


def cluster_info(acc, ca_pem):
    """rest/exec.go ConfigToExecCluster: what provideClusterInfo hands the plugin (CA as bytes -> base64)."""
    out = {"server": acc.server}
    if acc.tls_server_name:
        out["tls-server-name"] = acc.tls_server_name
    if acc.insecure:
        out["insecure-skip-tls-verify"] = True
    if ca_pem:
        out["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if acc.proxy_url:
        out["proxy-url"] = acc.proxy_url
    if acc.disable_compression:
        out["disable-compression"] = True
    out["config"] = acc.exec_cluster_config  # runtime.RawExtension without omitempty: null when absent
    return out


def _parse_time(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        raise ExecFailed("exec plugin returned an invalid status.expirationTimestamp",
                         hint="fix or update the credential plugin") from None


def run(spec, cluster=None, stdin_is_terminal=None):
    """Run the plugin once: {'token', 'cert', 'key', 'expiry' (epoch seconds or None)}."""
    cmd = spec["command"]
    is_tty = _stdin_is_terminal() if stdin_is_terminal is None else stdin_is_terminal
    want_tty = interactive(spec.get("interactiveMode") or "IfAvailable", is_tty)
    info = {"kind": "ExecCredential", "apiVersion": spec["apiVersion"], "spec": {"interactive": want_tty}}
    if spec.get("provideClusterInfo") and cluster is not None:
        info["spec"]["cluster"] = cluster
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[item["name"]] = item.get("value", "")
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info, separators=(",", ":"))
    path = cmd if "/" in cmd else shutil.which(cmd)
    if not path or not os.path.exists(path):
        hint = " ".join(str(spec.get("installHint") or "").split())  # kubectl shows it; one line here
        raise ExecFailed(f"exec: executable {cmd} not found", hint=hint or INSTALL_HELP)
    try:
        # stderr goes to the user's terminal (login prompts, errors), stdin only when interactive.
        proc = subprocess.run([path, *(spec.get("args") or [])], env=env, stdout=subprocess.PIPE, stderr=None,
                              stdin=None if want_tty else subprocess.DEVNULL)
    except OSError as exc:
        raise ExecFailed(f"exec: {cmd}: {exc.strerror}", hint="check the exec command in the kubeconfig") from None
    if proc.returncode != 0:
        raise ExecFailed(f"exec: executable {cmd} failed with exit code {proc.returncode}",
                         hint="see the plugin's message above; log in again or fix the plugin")
    return parse_output(proc.stdout, spec["apiVersion"])


def parse_output(stdout, api_version):
    """refreshCredsLocked's checks on the plugin's answer. Messages never quote the output (a credential)."""
    try:
        cred = json.loads(stdout)
    except ValueError as exc:
        raise ExecFailed(f"decoding stdout of the exec plugin: not JSON (line {exc.lineno} column {exc.colno})",
                         hint="the plugin must print one ExecCredential object") from None
    if not isinstance(cred, dict) or cred.get("kind") != "ExecCredential":
        raise ExecFailed("decoding stdout of the exec plugin: not an ExecCredential",
                         hint="the plugin must print one ExecCredential object")
    if cred.get("apiVersion") != api_version:
        raise ExecFailed(f"exec plugin is configured to use API version {api_version}, plugin returned version "
                         f"{cred.get('apiVersion')}", hint="set exec.apiVersion to the version the plugin speaks")
    status = cred.get("status")
    if not isinstance(status, dict):
        raise ExecFailed("exec plugin didn't return a status field", hint="fix or update the credential plugin")
    token, cert, key = status.get("token"), status.get("clientCertificateData"), status.get("clientKeyData")
    if not (token or cert or key):
        raise ExecFailed("exec plugin didn't return a token or cert/key pair", hint="fix or update the plugin")
    if bool(cert) != bool(key):
        raise ExecFailed("exec plugin returned only certificate or key, not both", hint="fix or update the plugin")
    expiry = _parse_time(status["expirationTimestamp"]) if status.get("expirationTimestamp") else None
    return {"token": token, "cert": cert.encode() if cert else None, "key": key.encode() if key else None,
            "expiry": expiry}


def expired(cred, now=None):
    """exec.go credsExpired: a credential without expirationTimestamp never expires in this process."""
    if cred is None:
        return True
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    return cred["expiry"] is not None and now > cred["expiry"]
