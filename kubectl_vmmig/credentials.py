"""Who the plugin is to the API server: the Authorization and Impersonate-* headers, and exec client certs.

Precedence follows client-go: transport.HTTPWrappersForConfig (bearer token over basic auth), the exec
and auth-provider round trippers that only fill an empty Authorization (exec.go roundTripper.RoundTrip,
oidc.go roundTripper), exec.go UpdateTransportConfig (no exec when a token, basic auth or a client
certificate is configured), clientcmd getUserIdentificationPartialConfig (tokenFile read for every request,
prompting for a username when nothing identifies the user) and rest.IsConfigTransportTLS (no credentials
at all over plain http).
"""
import base64
import time

from . import errors  # execcred (subprocess, datetime) only when an exec plugin or a prompt is needed

TOKEN_FILE_PERIOD = 60.0  # transport.NewCachedFileTokenSource re-reads the file once a minute

# client-go plugin/pkg/client/auth: gcp and azure were removed in 1.26 with these replacements.
REMOVED_PROVIDERS = {
    "gcp": "use the gke-gcloud-auth-plugin exec credential plugin (gcloud components install gke-gcloud-auth-plugin)",
    "azure": "use the kubelogin exec credential plugin "
             "(https://github.com/Azure/kubelogin: kubelogin convert-kubeconfig)",
}


class Credentials:
    def __init__(self, access, ca_pem=None):
        self.access = access
        self.ca_pem = ca_pem  # for provideClusterInfo
        self._file_token = None
        self._file_read_at = 0.0
        self._exec = None
        self._oidc = None
        self._prompted = None
        acc = access
        self.tls = acc.server.startswith("https://")
        self.cert_configured = bool((acc.client_cert_file or acc.client_cert_data) and
                                    (acc.client_key_file or acc.client_key_data))
        # UpdateTransportConfig: the exec plugin is not even run when another method is configured.
        self.use_exec = bool(self.tls and acc.exec_config and not (acc.token or acc.token_file or acc.username or
                                                                 self.cert_configured))
        if self.tls and acc.auth_provider:
            self._check_provider()

    # ---- auth-provider ------------------------------------------------------------------------
    def _check_provider(self):
        name = self.access.auth_provider.get("name")
        if name in REMOVED_PROVIDERS:
            raise errors.BadInput(f"the {name} auth-provider of user {self.access.user_name!r} was removed from "
                                  "kubectl", REMOVED_PROVIDERS[name])
        if name != "oidc":
            raise errors.BadInput(f"no auth-provider {name!r} (user {self.access.user_name!r}); kubectl knows only "
                                  "oidc", "replace it with an exec credential plugin in the kubeconfig")

    def _oidc_token(self):
        """The oidc id-token through the kubernetes client's implementation (KubeConfigLoader._load_oid_token:
        refreshes an expired id-token with the refresh-token, as kubectl does), imported only here."""
        if self._oidc is not None:
            return self._oidc
        from kubernetes.config.kube_config import KubeConfigLoader

        acc = self.access
        provider = {k: v for k, v in acc.auth_provider.items()}
        cfg = dict(provider.get("config") or {})
        for key in ("client-id", "idp-issuer-url"):  # client-go oidc.newOIDCAuthProvider requires both
            if not cfg.get(key):
                raise errors.BadInput(f"oidc auth-provider of user {acc.user_name!r}: {key} is required",
                                      "fix the user's auth-provider config in the kubeconfig")
        provider["config"] = cfg
        before = dict(cfg)
        loader = KubeConfigLoader(
            {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
             "clusters": [{"name": "k", "cluster": {"server": acc.server}}],
             "users": [{"name": "u", "user": {"auth-provider": provider}}]}, active_context="c")
        try:
            token = loader._load_auth_provider_token()
        except Exception as exc:  # refresh errors come from oauthlib/urllib3 with all kinds of types
            raise errors.Unauthorized(f"oidc auth-provider could not refresh the id-token ({type(exc).__name__})",
                                      hint="log in again with your OIDC login tool") from None
        if not token:
            raise errors.Unauthorized(f"oidc auth-provider of user {acc.user_name!r} has no valid id-token",
                                      hint="log in again with your OIDC login tool")
        after = dict(loader._user["auth-provider"]["config"].value)
        if after != before:
            self._persist_oidc(after)  # clientcmd PersisterForUser: kubectl writes refreshed tokens back
        self._oidc = token.split(" ", 1)[1]
        return self._oidc

    def _persist_oidc(self, config):
        import yaml

        path = self.access.user_file
        if not path:
            return
        with open(path) as fh:
            data = yaml.safe_load(fh)
        for entry in data.get("users") or []:
            if entry.get("name") == self.access.user_name:
                entry["user"]["auth-provider"]["config"] = config
        with open(path, "w") as fh:
            yaml.safe_dump(data, fh, sort_keys=False)

    # ---- tokens -------------------------------------------------------------------------------
    def _token_from_file(self):
        acc = self.access
        now = time.monotonic()
        if self._file_token is None or now - self._file_read_at > TOKEN_FILE_PERIOD:
            try:
                with open(acc.token_file) as fh:
                    self._file_token = fh.read().strip()
                self._file_read_at = now
            except OSError as exc:
                if self._file_token is None and not acc.token:
                    raise errors.BadInput(f"cannot read tokenFile {acc.token_file}: {exc.strerror}",
                                          "fix the kubeconfig") from None
        return self._file_token or acc.token

    def exec_credential(self):
        """The cached exec credential, run again once it has expired (exec.go getCreds)."""
        from . import execcred

        if self.use_exec and execcred.expired(self._exec):
            cluster = execcred.cluster_info(self.access, self.ca_pem)
            self._exec = execcred.run(self.access.exec_config, cluster)
        return self._exec

    def forget_exec(self):
        """After a 401: run the plugin again for the next request (exec.go maybeRefreshCreds)."""
        if self.use_exec:
            self._exec = None

    def _prompt(self):
        """getUserIdentificationPartialConfig: nothing identifies the user -> kubectl asks on stdin."""
        if self._prompted is None:
            from . import execcred

            if not execcred._stdin_is_terminal():
                raise errors.BadInput(f"no credentials for kubeconfig user {self.access.user_name or '(none)'!r} "
                                      "and standard input is not a terminal to ask for them",
                                      "add a token, client certificate or exec plugin to the user, or pass --token")
            import click

            user = click.prompt("Please enter Username", err=True)
            self._prompted = (user, click.prompt("Please enter Password", hide_input=True, err=True))
        return self._prompted

    def authorization(self):
        """The Authorization header value, or None."""
        acc = self.access
        if not self.tls:
            return None
        token = self._token_from_file() if acc.token_file else acc.token
        if token:
            return "Bearer " + token
        if acc.username:
            user, password = acc.username, acc.password
        elif self.use_exec:
            cred = self.exec_credential()
            return "Bearer " + cred["token"] if cred.get("token") else None
        elif acc.auth_provider:
            return "Bearer " + self._oidc_token()
        elif self.cert_configured:
            return None
        else:
            user, password = self._prompt()
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()

    def client_cert(self):
        """(cert PEM bytes, key PEM bytes) from the exec plugin, or None."""
        cred = self.exec_credential() if self.use_exec else None
        if cred and cred.get("cert"):
            return cred["cert"], cred["key"]
        return None

    def impersonation(self):
        acc = self.access
        out = []
        if acc.impersonate_user:
            out.append(("Impersonate-User", acc.impersonate_user))
            out += [("Impersonate-Group", g) for g in acc.impersonate_groups]  # one header line per group
            if acc.impersonate_uid:
                out.append(("Impersonate-Uid", acc.impersonate_uid))
        return out

