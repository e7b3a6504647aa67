"""Parity, part 3: exec credential plugins (client-go plugin/pkg/client/auth/exec/exec.go), auth-providers
(plugin/pkg/client/auth/oidc, the removed gcp/azure), impersonation (--as, --as-group, --as-uid)."""
import base64
import json

import pytest

from . import kit
from .conftest import cluster, sa, token_user
from .kit import Case, fails, kubeconfig, ok, user

pytestmark = pytest.mark.cluster
KC = kubeconfig
V1, V1B = "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"


def exec_user(api=V1, mode="Never", command="{dir}/bin/cred.py", args=("{dir}/tok",), cred_mode="ok", **kw):
    spec = {"apiVersion": api, "command": command, "args": list(args),
            "env": [{"name": "CRED_LOG", "value": "{dir}/exec.log"}, {"name": "CRED_MODE", "value": cred_mode}]}
    if mode:
        spec["interactiveMode"] = mode
    spec.update(kw)
    return {"exec": spec}


def exec_case(w, us=None, token="exec1", cl=None, **kw):
    files = {"bin/cred.py": kit.cred_script(), "tok": w.tokens[token],
             "kubeconfig": KC(cl or cluster(w), us or exec_user())}
    return Case(files=files, **kw)


def ran(times_kubectl=None, times_plugin=None, same_info=True):
    """check: how often each side ran the plugin, and that both got the same KUBERNETES_EXEC_INFO/argv/env."""
    def check(w, case_dir, kres, pres):
        k, p = kit.exec_log(case_dir, "kubectl"), kit.exec_log(case_dir, "plugin")
        for runs, want, who in ((k, times_kubectl, "kubectl"), (p, times_plugin, "plugin")):
            if want == "many":
                assert len(runs) > 1, (who, runs)
            elif want is not None:
                assert len(runs) == want, (who, runs)
        if same_info and k and p:
            for key in ("info", "argv", "extra", "cwd", "stdin_tty"):
                assert k[0][key] == p[0][key], (key, k[0][key], p[0][key])
    return check


def v75_exec_v1_never(w):
    return exec_case(w, kubectl=user(sa("exec1")), check=ran(None, 1))


def v76_exec_v1beta1_without_interactive_mode(w):
    return exec_case(w, exec_user(V1B, mode=None), token="exec1b", kubectl=user(sa("exec1b")), check=ran(None, 1))


def v77_exec_if_available_without_terminal(w):
    return exec_case(w, exec_user(mode="IfAvailable"), kubectl=user(sa("exec1")), check=ran(None, 1))


def v78_exec_always_without_terminal(w):
    return exec_case(w, exec_user(mode="Always"),
                     kubectl=fails("standard input is not a terminal", "standard input is not a terminal", 6),
                     check=ran(0, 0))


def v79_exec_v1_without_interactive_mode(w):
    return exec_case(w, exec_user(mode=None), kubectl=fails("interactiveMode must be specified",
                                                            "interactiveMode must be specified", 2), check=ran(0, 0))


def v79b_exec_invalid_interactive_mode(w):
    return exec_case(w, exec_user(mode="Sometimes"), kubectl=fails("invalid interactiveMode", "invalid interactiveMode", 2))


def v79c_exec_without_command(w):
    return exec_case(w, exec_user(command=""), kubectl=fails("command must be specified", "command must be specified", 2))


def v80_exec_exits_3_with_a_message(w):
    says = ("failed with exit code 3", "cred.py: login failed")   # the plugin's own stderr reaches the user
    return exec_case(w, exec_user(cred_mode="fail"), kubectl=fails(says, says, 6))


def v81_exec_not_found_shows_install_hint(w):
    hint = "Install kcfg-login with: brew install kcfg-login"
    says = ("executable kcfg-no-such-login-helper not found", hint)
    return exec_case(w, exec_user(command="kcfg-no-such-login-helper", installHint=hint), kubectl=fails(says, says, 6))


def v81b_exec_not_found_without_hint(w):
    says = "executable kcfg-no-such-login-helper not found"
    return exec_case(w, exec_user(command="kcfg-no-such-login-helper"),
                     kubectl=fails((says, "client-go-credential-plugins"), (says, "client-go-credential-plugins"), 6))


def v82_exec_relative_command_resolved_against_the_kubeconfig(w):
    return exec_case(w, exec_user(command="./bin/cred.py"), kubectl=user(sa("exec1")), check=ran(None, 1))


def v82b_exec_bare_command_found_on_path(w):
    case = exec_case(w, exec_user(command="cred.py"), kubectl=user(sa("exec1")), check=ran(None, 1))
    case.env = {"PATH": "{dir}/bin:" + w.path}
    return case


def v83_exec_answers_another_api_version(w):
    return exec_case(w, exec_user(cred_mode="wrongapi"), kubectl=fails("v1alpha1", "v1alpha1", 6))


def v84_token_wins_exec_not_run(w):
    return exec_case(w, dict(exec_user(cred_mode="fail"), token=w.tokens["tfile"]), kubectl=user(sa("tfile")),
                     check=ran(0, 0))


def v85_client_cert_set_exec_not_run(w):
    us = dict(exec_user(cred_mode="fail"), **{"client-certificate": w.carl[0], "client-key": w.carl[1]})
    return exec_case(w, us, kubectl=user("carl"), check=ran(0, 0))


def v85b_token_file_set_exec_not_run(w):
    case = exec_case(w, dict(exec_user(cred_mode="fail"), tokenFile="tok"), token="tfile", kubectl=user(sa("tfile")),
                     check=ran(0, 0))
    return case


def v86_token_flag_exec_not_run(w):
    return exec_case(w, exec_user(cred_mode="fail"), args=("--token", w.tokens["tfile"]), kubectl=user(sa("tfile")),
                     check=ran(0, 0))


def v87_exec_invalid_json(w):
    def check(w_, case_dir, kres, pres):
        fragment = w.tokens["exec1"][-12:]
        assert fragment not in pres.stdout + pres.stderr
    return exec_case(w, exec_user(cred_mode="badjson"), kubectl=fails("decoding stdout", "decoding stdout", 6),
                     check=check)


def v87b_exec_args_and_env(w):
    us = exec_user(args=("{dir}/tok", "--flag", "two words"))
    us["exec"]["env"].append({"name": "CRED_EXTRA", "value": "from-kubeconfig"})

    def check(w_, case_dir, kres, pres):
        ran(None, 1)(w_, case_dir, kres, pres)
        run = kit.exec_log(case_dir, "plugin")[0]
        assert run["argv"][1:] == ["--flag", "two words"] and run["extra"] == "from-kubeconfig"
    return exec_case(w, us, kubectl=user(sa("exec1")), check=check)


def v87c_exec_provide_cluster_info(w):
    cl = cluster(w, extensions=[{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "kcfg"}}])

    def check(w_, case_dir, kres, pres):
        ran(None, 1)(w_, case_dir, kres, pres)   # same KUBERNETES_EXEC_INFO on both sides
        info = kit.exec_log(case_dir, "plugin")[0]["info"]
        assert info["spec"]["cluster"]["server"] == w.server
        assert info["spec"]["cluster"]["config"] == {"audience": "kcfg"}
        assert base64.b64decode(info["spec"]["cluster"]["certificate-authority-data"]).decode() == kit.read(w.ca)
    return exec_case(w, exec_user(provideClusterInfo=True), cl=cl, kubectl=user(sa("exec1")), check=check)


def v87d_exec_returns_a_client_certificate(w):
    us = exec_user(args=(w.carl[0], w.carl[1]), cred_mode="cert")
    return exec_case(w, us, kubectl=user("carl"), check=ran(None, 1))


def v87e_exec_credential_reused_until_expiry(w):
    return exec_case(w, exec_user(cred_mode="future"), kubectl=user(sa("exec1")), check=ran(1, 1))


def v87f_exec_credential_expired_runs_again(w):
    return exec_case(w, exec_user(cred_mode="expired"), kubectl=user(sa("exec1")), check=ran("many", "many"))


def v87g_exec_returns_no_credential(w):
    return exec_case(w, exec_user(cred_mode="empty"), kubectl=fails("didn't return a token or cert/key pair",
                                                                    "didn't return a token or cert/key pair", 6))


def v87h_exec_and_auth_provider_refused(w):
    us = dict(exec_user(), **{"auth-provider": {"name": "oidc", "config": {"client-id": "x", "idp-issuer-url": "https://x"}}})
    return exec_case(w, us, kubectl=fails("authProvider cannot be provided in combination with an exec plugin",
                                          "both auth-provider and exec", 2))


def v87i_exec_invalid_api_version(w):
    return exec_case(w, exec_user(api="client.authentication.k8s.io/v9"),
                     kubectl=fails("client.authentication.k8s.io/v9", "apiVersion must be one of", 2))


# ---- auth-providers ----------------------------------------------------------------------------------------
def _jwt(exp):
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'iss': 'https://127.0.0.1:1', 'sub': 'kcfg', 'exp': exp})}.c2ln"


def oidc_user(exp=4102444800, **cfg):
    config = {"client-id": "kcfg", "idp-issuer-url": f"https://127.0.0.1:{kit.dead_port()}", "id-token": _jwt(exp)}
    config.update(cfg)
    return {"auth-provider": {"name": "oidc", "config": {k: v for k, v in config.items() if v is not None}}}


def provider_case(w, us, **kw):
    return Case(files={"kubeconfig": KC(cluster(w), us)}, **kw)


def v73_oidc_id_token_sent(w):
    # the API server has no OIDC issuer configured: the id-token is sent and refused, on both sides
    return provider_case(w, oidc_user(), kubectl=fails("You must be logged in to the server", "Unauthorized", 6))


def v73b_oidc_expired_id_token_unreachable_issuer(w):
    return provider_case(w, oidc_user(exp=1000000000, **{"refresh-token": "kcfg-refresh"}),
                         kubectl=fails("refused", "oidc auth-provider could not refresh the id-token", 6))


def v73c_gcp_provider_removed(w):
    return provider_case(w, {"auth-provider": {"name": "gcp"}},
                         kubectl=fails("gke-gcloud-auth-plugin", ("gcp auth-provider", "gke-gcloud-auth-plugin"), 2))


def v73d_azure_provider_removed(w):
    return provider_case(w, {"auth-provider": {"name": "azure"}},
                         kubectl=fails("kubelogin", ("azure auth-provider", "kubelogin"), 2))


def v73e_unknown_provider(w):
    return provider_case(w, {"auth-provider": {"name": "kcfg-magic"}},
                         kubectl=fails('no Auth Provider found for name "kcfg-magic"', "no auth-provider 'kcfg-magic'", 2))


def v73f_token_flag_over_oidc(w):
    return provider_case(w, oidc_user(), args=("--token", w.tokens["tfile"]), kubectl=user(sa("tfile")))


def v73g_oidc_without_client_id(w):
    return provider_case(w, oidc_user(**{"client-id": None}), kubectl=fails("client-id", "client-id is required", 2))


# ---- impersonation -------------------------------------------------------------------------------------------
def imp(w, args=(), us=None, **kw):
    return Case(files={"kubeconfig": KC(cluster(w), us or token_user(w, "admin"))}, args=args, **kw)


def v88_as_user(w):
    return imp(w, ("--as", "bob"), kubectl=user("bob"))


def v89_as_groups_repeated(w):
    return imp(w, ("--as", "bob", "--as-group", "g1", "--as-group", "kcfg-viewers"), kubectl=ok())


def v90_as_group_without_as(w):
    return imp(w, ("--as-group", "g1"), kubectl=fails("without impersonating a user", "--as-group/--as-uid need --as", 2))


def v91_as_uid(w):
    return imp(w, ("--as", "bob", "--as-uid", "kcfg-uid-123"), kubectl=user("bob"))


def v92_kubeconfig_as_and_as_groups(w):
    return imp(w, us=token_user(w, "admin", **{"as": "carol", "as-groups": ["g2", "kcfg-viewers"]}), kubectl=ok())


def v92b_kubeconfig_as_without_grant(w):
    return imp(w, us=token_user(w, "admin", **{"as": "carol", "as-groups": ["g2"]}), kubectl=user("carol"))


def v93_as_uid_without_as(w):
    return imp(w, ("--as-uid", "kcfg-uid-123"), kubectl=fails("without impersonating a user", "need --as", 2))


def v93b_kubeconfig_as_groups_without_as(w):
    return imp(w, us=token_user(w, "admin", **{"as-groups": ["kcfg-viewers"]}),
               kubectl=fails("without impersonating a user", "need --as", 2))


def v93c_as_flag_over_kubeconfig_as(w):
    return imp(w, ("--as", "bob"), us=token_user(w, "admin", **{"as": "carol"}), kubectl=user("bob"))


def v93d_impersonating_without_the_right(w):
    return imp(w, ("--as", "bob"), us=token_user(w, "alice"), kubectl=fails("cannot impersonate", "cannot impersonate", 7),
               kubectl_cmd=("get", "--raw", f"/api/v1/namespaces/{kit.NS}/configmaps"))


CASES = {name: fn for name, fn in globals().items() if name.startswith("v") and name[1:3].isdigit()}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_parity(variant, world, parity):
    parity(CASES[variant](world))
