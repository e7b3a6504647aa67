"""Parity, part 4: proxies (the cluster's proxy-url, HTTPS_PROXY/HTTP_PROXY/NO_PROXY as Go's httpproxy reads
them), timeouts, namespaces on every verb, `version` failing like `kubectl version`, and secrets in URLs."""
import json

import pytest

from . import kit
from .conftest import PROXY_PASSWORD, URL_PASSWORD, cluster, sa, token_user
from .kit import Case, fails, kubeconfig, ok, user

pytestmark = pytest.mark.cluster
KC = kubeconfig


def base(w, cl=None, us=None, **kw):
    return Case(files={"kubeconfig": KC(cl or cluster(w), token_user(w) if us is None else us)}, **kw)


def behind_proxy(w, **kw):
    """server https://kubernetes:PORT: resolvable only by the proxy (which maps every host to 127.0.0.1)."""
    return cluster(w, server=f"https://kubernetes:{w.port}", **kw)


def proxied(both=True):
    def check(w, case_dir, kres, pres):
        seen = [line for line in w.proxy.log if f"kubernetes:{w.port}" in line or f"127.0.0.1:{w.port}" in line]
        assert seen if both else not seen, w.proxy.log[-5:]
        w.proxy.log.clear()
    return check


def v94_env_proxy_never_for_loopback(w):
    return base(w, env={"HTTPS_PROXY": f"http://127.0.0.1:{kit.dead_port()}"}, kubectl=user(sa("nobody")))


def v94b_env_proxy_never_for_localhost(w):
    return base(w, cluster(w, server=f"https://localhost:{w.port}", **{"tls-server-name": "kubernetes"}),
                env={"HTTPS_PROXY": f"http://127.0.0.1:{kit.dead_port()}"}, kubectl=user(sa("nobody")))


def v95_https_proxy_env(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url}, kubectl=user(sa("nobody")), check=proxied())


def v95b_lower_case_https_proxy_env(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w), env={"https_proxy": w.proxy.url}, kubectl=user(sa("nobody")), check=proxied())


def v95c_https_proxy_without_scheme(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url[len("http://"):]}, kubectl=user(sa("nobody")),
                check=proxied())


def v95d_proxy_credentials_never_printed(w):
    w.proxy.log.clear()
    url = w.proxy.url.replace("http://", f"http://kcfg:{PROXY_PASSWORD}@")
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": url}, kubectl=user(sa("nobody")), check=proxied())


def v96_no_proxy_names_the_host(w):
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url, "NO_PROXY": "kubernetes"},
                kubectl=fails("kubernetes", "Failed to resolve 'kubernetes'", 6))


def v96b_no_proxy_domain_suffix(w):
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url, "NO_PROXY": "example.com,.svc,kubernetes"},
                kubectl=fails("kubernetes", "Failed to resolve 'kubernetes'", 6))


def v96c_no_proxy_other_hosts_still_proxied(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url, "NO_PROXY": "example.com,10.0.0.0/8"},
                kubectl=user(sa("nobody")), check=proxied())


def v96d_no_proxy_star(w):
    return base(w, behind_proxy(w), env={"HTTPS_PROXY": w.proxy.url, "NO_PROXY": "*"},
                kubectl=fails("kubernetes", "Failed to resolve 'kubernetes'", 6))


def v96e_http_proxy_is_not_for_https(w):
    return base(w, behind_proxy(w), env={"HTTP_PROXY": w.proxy.url},
                kubectl=fails("kubernetes", "Failed to resolve 'kubernetes'", 6))


def v97_dead_proxy_url_is_an_error(w):
    return base(w, cluster(w, **{"proxy-url": f"http://127.0.0.1:{kit.dead_port()}"}),
                kubectl=fails("refused", ("through the proxy", "refused"), 6))


def v98_proxy_url(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w, **{"proxy-url": w.proxy.url}), kubectl=user(sa("nobody")), check=proxied())


def v98b_proxy_url_over_env(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w, **{"proxy-url": w.proxy.url}),
                env={"HTTPS_PROXY": f"http://127.0.0.1:{kit.dead_port()}"}, kubectl=user(sa("nobody")), check=proxied())


def v98c_proxy_url_ignores_no_proxy(w):
    w.proxy.log.clear()
    return base(w, behind_proxy(w, **{"proxy-url": w.proxy.url}), env={"NO_PROXY": "kubernetes"},
                kubectl=user(sa("nobody")), check=proxied())


def v98d_proxy_url_for_loopback_too(w):
    w.proxy.log.clear()
    return base(w, cluster(w, **{"proxy-url": w.proxy.url}), kubectl=user(sa("nobody")), check=proxied())


def v98e_proxy_url_bad_scheme(w):
    return base(w, cluster(w, **{"proxy-url": "ftp://127.0.0.1:21"}),
                kubectl=fails("unsupported scheme", "unsupported scheme 'ftp'", 2))


def v98f_proxy_url_in_exec_cluster_info(w):
    from .test_parity_auth import exec_case, exec_user, ran

    def check(w_, case_dir, kres, pres):
        ran(None, 1)(w_, case_dir, kres, pres)  # the same KUBERNETES_EXEC_INFO on both sides
        assert kit.exec_log(case_dir, "plugin")[0]["info"]["spec"]["cluster"]["proxy-url"] == w.proxy.url
    return exec_case(w, exec_user(provideClusterInfo=True), cl=behind_proxy(w, **{"proxy-url": w.proxy.url}),
                     kubectl=user(sa("exec1")), check=check)


def v99_disable_compression(w):
    return base(w, cluster(w, **{"disable-compression": True}), kubectl=user(sa("nobody")))


def v100_request_timeout(w):
    return base(w, args=("--request-timeout=5s",), kubectl=user(sa("nobody")))


def v101_request_timeout_invalid(w):
    return base(w, args=("--request-timeout=abc",), kubectl=fails("Invalid timeout value", "invalid --request-timeout", 2))


def v102_request_timeout_compound(w):
    return base(w, args=("--request-timeout", "1h30m"), kubectl=user(sa("nobody")))


def v103_namespace_equals_forms(w):
    return base(w, args=("--namespace=demo",), kubectl=user(sa("nobody"), "demo"))


def v103b_namespace_short_attached(w):
    return base(w, args=("-ndemo",), kubectl=user(sa("nobody"), "demo"))


def v104_version_accepts_namespace(w):
    return base(w, us=token_user(w, "admin"), args=("-n", "demo"), kubectl=ok(),
                kubectl_cmd=("version",), plugin_cmd=("vm-storage", "version"))


def v105_url_userinfo_with_token(w):
    # Deliberate difference: kubectl turns URL userinfo into basic auth and drops the token (-> anonymous);
    # the plugin never uses or prints URL userinfo, and authenticates with the user's token.
    return base(w, cluster(w, server=w.server.replace("https://", f"https://kcfguser:{URL_PASSWORD}@")),
                kubectl=user("system:anonymous"), plugin=user(sa("nobody")),
                kubectl_cmd=("get", "--raw", f"/api/v1/namespaces/{kit.NS}/configmaps"))


def v106_request_timeout_1ns(w):
    # 1ns, not 1ms: a warm localhost request can answer within 1 ms, and then kubectl (the oracle) succeeds - seen
    # once under load. kubectl: "context deadline exceeded" or "Client.Timeout exceeded", by timing.
    return base(w, args=("--request-timeout=1ns",), kubectl=fails("exceeded", "timed out", 6))


def v107_relative_ca_flag_against_cwd(w):
    return Case(files={"here/ca.crt": kit.read(w.ca), "kubeconfig": KC(cluster(w, **{"certificate-authority": w.wrong_ca}),
                                                                        token_user(w))},
                cwd="here", args=("--certificate-authority", "ca.crt"), kubectl=user(sa("nobody")))


def _version(w, cl=None, **kw):
    return base(w, cl, kubectl_cmd=("version",), plugin_cmd=("vm-storage", "version"), **kw)


def v108_version_bad_token_fails(w):
    return _version(w, us={"token": "not-a-valid-token"}, kubectl=fails("You must be logged in", "Unauthorized", 6))


def v108b_version_tls_failure_fails(w):
    return _version(w, cluster(w, **{"certificate-authority": w.wrong_ca}),
                    kubectl=fails("unknown authority", "certificate verify failed", 6))


def v108c_version_unreachable_fails(w):
    return _version(w, cluster(w, server="https://127.0.0.1:1"), kubectl=fails("refused", "cannot reach", 6))


def v108d_version_bad_kubeconfig_fails(w):
    return Case(files={"kubeconfig": "clusters: [unclosed\n"}, kubectl_cmd=("version",),
                plugin_cmd=("vm-storage", "version"), kubectl=fails("yaml", "not valid YAML", 2))


def _no_password(w, case_dir, kres, pres):
    assert URL_PASSWORD not in pres.stdout + pres.stderr


def v109_url_password_never_printed_unreachable(w):
    return base(w, cluster(w, server=f"https://kcfguser:{URL_PASSWORD}@127.0.0.1:1"),
                kubectl=fails("127.0.0.1:1", "cannot reach the API server at https://127.0.0.1:1", 6), check=_no_password)


def v109b_url_password_never_in_version_json(w):
    def check(w_, case_dir, kres, pres):
        _no_password(w_, case_dir, kres, pres)
        assert json.loads(pres.stdout)["clientVersion"]
    return _version(w, cluster(w, server=f"https://kcfguser:{URL_PASSWORD}@127.0.0.1:1"), args=("-o", "json"),
                    kubectl=fails("127.0.0.1:1", "cannot reach", 6), check=check)


def v109c_url_password_never_at_v9(w):
    return base(w, cluster(w, server=f"https://kcfguser:{URL_PASSWORD}@127.0.0.1:1"), args=("-v", "9"),
                kubectl=fails("127.0.0.1:1", "cannot reach", 6), check=_no_password)


def v110_secrets_never_at_v9(w):
    # every token/key of the world is searched in the plugin's output by the parity fixture
    return base(w, us=token_user(w, **{"client-certificate": w.carl[0], "client-key": w.carl[1]}), args=("-v", "9"),
                kubectl=user("carl"))


def v110b_exec_output_never_at_v9(w):
    from .test_parity_auth import exec_user

    files = {"bin/cred.py": kit.cred_script(), "tok": w.tokens["exec1"],
             "kubeconfig": KC(cluster(w), exec_user())}
    return Case(files=files, args=("-v", "9"), kubectl=user(sa("exec1")))


def v111_plain_http_server_gets_no_credentials(w):
    # rest.IsConfigTransportTLS: kubectl reads no credentials at all for an http:// server (no token in clear text)
    w.front.authorization_seen.clear()

    def check(w_, case_dir, kres, pres):
        assert w.front.authorization_seen and not any(w.front.authorization_seen), w.front.authorization_seen
    return base(w, us=token_user(w, "admin"), args=("-s", w.front.url), kubectl=user("system:anonymous"), check=check,
                kubectl_cmd=("get", "--raw", f"/api/v1/namespaces/{kit.NS}/configmaps"))


CASES = {name: fn for name, fn in globals().items() if name.startswith("v") and name[1:3].isdigit()}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_parity(variant, world, parity):
    parity(CASES[variant](world))
