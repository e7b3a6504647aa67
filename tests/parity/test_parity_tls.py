"""Parity, part 2: server address, TLS rules (clientcmd getCluster overrides, validateClusterInfo,
transport.TLSConfigFor), client certificates, tokens and token files (getUserIdentificationPartialConfig,
transport.NewBearerAuthWithRefreshRoundTripper)."""
import pytest

from . import kit
from .conftest import BASIC_PASSWORD, cluster, sa, token_user
from .kit import Case, fails, kubeconfig, user

pytestmark = pytest.mark.cluster
KC = kubeconfig
TLS_UNKNOWN_CA = ("certificate signed by unknown authority", "certificate verify failed")


def base(w, cl=None, us=None, **kw):
    return Case(files={"kubeconfig": KC(cl or cluster(w), token_user(w) if us is None else us)}, **kw)


def v40_server_flag_without_kubeconfig(w):
    return Case(kubeconfig=None, args=("-s", w.server, "--certificate-authority", w.ca, "--token", w.tokens["nobody"]),
                kubectl=user(sa("nobody"), "default"))


def v41_server_flag_over_dead_server(w):
    return base(w, cluster(w, server="https://127.0.0.1:1"), token_user(w, "tfile"), args=("-s", w.server),
                kubectl=user(sa("tfile")))


def v42_server_without_scheme(w):
    # Deliberate difference (README "Connecting"): kubectl picks http:// and the HTTPS port answers 400.
    return base(w, args=("-s", f"127.0.0.1:{w.port}"),
                kubectl=fails("the server rejected our request", (), 0), plugin=user(sa("nobody")))


def v43_http_to_the_https_port(w):
    return base(w, args=("-s", f"http://127.0.0.1:{w.port}"),
                kubectl=fails("the server rejected our request", "Client sent an HTTP request to an HTTPS server", 6))


def v44_server_flag_clears_kubeconfig_tls_server_name(w):
    return base(w, cluster(w, **{"tls-server-name": "kubernetes"}), args=("-s", f"https://localhost:{w.port}"),
                kubectl=fails("not localhost", "Hostname mismatch", 6))


def v44b_server_and_tls_server_name_flags(w):
    return base(w, cluster(w, **{"tls-server-name": "wrong.example"}),
                args=("-s", f"https://localhost:{w.port}", "--tls-server-name", "kubernetes"), kubectl=user(sa("nobody")))


def v45_ipv6_loopback_refused(w):
    return base(w, cluster(w, server=f"https://[::1]:{w.port}"),
                kubectl=fails("refused", "cannot reach the API server at https://[::1]", 6))


def v46_insecure_without_ca(w):
    return base(w, cluster(w, **{"certificate-authority": None, "insecure-skip-tls-verify": True}),
                kubectl=user(sa("nobody")))


def v47_insecure_and_ca_refused(w):
    return base(w, cluster(w, **{"insecure-skip-tls-verify": True}),
                kubectl=fails("specifying a root certificates file with the insecure flag is not allowed",
                              "specifying a root certificates file with the insecure flag is not allowed", 2))


def v47b_insecure_and_ca_data_refused(w):
    return base(w, cluster(w, **{"certificate-authority": None, "certificate-authority-data": kit.b64(kit.read(w.ca)),
                                 "insecure-skip-tls-verify": True}),
                kubectl=fails("insecure flag is not allowed", "insecure flag is not allowed", 2))


def v48_wrong_ca(w):
    return base(w, cluster(w, **{"certificate-authority": w.wrong_ca}),
                kubectl=fails(TLS_UNKNOWN_CA[0], TLS_UNKNOWN_CA[1], 6))


def v49_insecure_flag_over_wrong_ca(w):
    return base(w, cluster(w, **{"certificate-authority": w.wrong_ca}), args=("--insecure-skip-tls-verify",),
                kubectl=user(sa("nobody")))


def v50_insecure_flag_equals_true(w):
    case = v49_insecure_flag_over_wrong_ca(w)
    case.args = ("--insecure-skip-tls-verify=true",)
    return case


def v50b_insecure_flag_equals_false(w):
    return base(w, cluster(w, **{"certificate-authority": w.wrong_ca}), args=("--insecure-skip-tls-verify=false",),
                kubectl=fails(TLS_UNKNOWN_CA[0], TLS_UNKNOWN_CA[1], 6))


def v51_ca_flag_over_wrong_kubeconfig_ca(w):
    return base(w, cluster(w, **{"certificate-authority": w.wrong_ca}), args=("--certificate-authority", w.ca),
                kubectl=user(sa("nobody")))


def v52_ca_flag_clears_kubeconfig_insecure(w):
    return base(w, cluster(w, **{"certificate-authority": None, "insecure-skip-tls-verify": True}),
                args=("--certificate-authority", w.wrong_ca), kubectl=fails(TLS_UNKNOWN_CA[0], TLS_UNKNOWN_CA[1], 6))


def v52b_right_ca_flag_with_kubeconfig_insecure(w):
    return base(w, cluster(w, **{"certificate-authority": None, "insecure-skip-tls-verify": True}),
                args=("--certificate-authority", w.ca), kubectl=user(sa("nobody")))


def v53_tls_server_name_for_localhost(w):
    return base(w, cluster(w, server=f"https://localhost:{w.port}", **{"tls-server-name": "kubernetes"}),
                kubectl=user(sa("nobody")))


def v54_localhost_not_in_certificate(w):
    return base(w, cluster(w, server=f"https://localhost:{w.port}"), kubectl=fails("not localhost", "Hostname mismatch", 6))


def v55_tls_server_name_flag(w):
    return base(w, cluster(w, server=f"https://localhost:{w.port}"), args=("--tls-server-name", "kubernetes"),
                kubectl=user(sa("nobody")))


def v56_wrong_tls_server_name(w):
    return base(w, cluster(w, **{"tls-server-name": "wrong.example"}), kubectl=fails("not wrong.example", "wrong.example", 6))


def v57_ca_data_inline(w):
    return base(w, cluster(w, **{"certificate-authority": None, "certificate-authority-data": kit.b64(kit.read(w.ca))}),
                kubectl=user(sa("nobody")))


def v58_ca_data_and_ca_file_refused(w):
    return base(w, cluster(w, **{"certificate-authority": w.wrong_ca, "certificate-authority-data": kit.b64(kit.read(w.ca))}),
                kubectl=fails("certificate-authority-data and certificate-authority are both specified",
                              "certificate-authority-data and certificate-authority are both specified", 2))


def v59_ca_data_not_base64(w):
    return base(w, cluster(w, **{"certificate-authority": None, "certificate-authority-data": "%%%not-base64%%%"}),
                kubectl=fails("illegal base64", "not valid base64", 2))


def v60_ca_data_not_pem(w):
    return base(w, cluster(w, **{"certificate-authority": None, "certificate-authority-data": kit.b64("just text\n")}),
                kubectl=fails("unable to load root certificates", "unable to load root certificates", 2))


def v60b_ca_data_binary(w):
    return base(w, cluster(w, **{"certificate-authority": None, "certificate-authority-data": kit.b64(b"\x00\xff\xfe")}),
                kubectl=fails("unable to load root certificates", "unable to load root certificates", 2))


def v61_ca_file_missing(w):
    return base(w, cluster(w, **{"certificate-authority": "no-such-ca.crt"}),
                kubectl=fails("unable to read certificate-authority", "no-such-ca.crt", 2))


def v62_client_cert_files_missing(w):
    return base(w, us={"client-certificate": "nope.crt", "client-key": "nope.key"},
                kubectl=fails("unable to read client-cert", "nope.crt", 2))


def v63_cert_key_mismatch(w):
    return base(w, us=token_user(w, **{"client-certificate": w.carl[0], "client-key": w.dora[1]}),
                kubectl=fails("private key does not match public key", "key values mismatch", 2))


def v64_client_cert_data_inline(w):
    return base(w, us={"client-certificate-data": kit.b64(kit.read(w.carl[0])),
                       "client-key-data": kit.b64(kit.read(w.carl[1]))}, kubectl=user("carl"))


def v65_client_cert_flags(w):
    return base(w, us={}, args=("--client-certificate", w.carl[0], "--client-key", w.carl[1]), kubectl=user("carl"))


def v65b_client_cert_flags_over_kubeconfig_data(w):
    return base(w, us={"client-certificate-data": kit.b64(kit.read(w.dora[0])),
                       "client-key-data": kit.b64(kit.read(w.dora[1]))},
                args=("--client-certificate", w.carl[0], "--client-key", w.carl[1]), kubectl=user("carl"))


def v66_client_cert_only(w):
    return base(w, us={"client-certificate": w.carl[0], "client-key": w.carl[1]}, kubectl=user("carl"))


def v66b_client_cert_without_key(w):
    return base(w, us={"client-certificate": w.carl[0]},
                kubectl=fails("client-key-data or client-key must be specified", "client-key-data or client-key must be specified", 2))


def v67_token_flag_with_missing_cert_files(w):
    return base(w, us={"client-certificate": "nope.crt", "client-key": "nope.key"}, args=("--token", w.tokens["tfile"]),
                kubectl=fails("unable to read client-cert", "nope.crt", 2))


def v67b_token_flag_with_valid_cert(w):
    return base(w, us=token_user(w, **{"client-certificate": w.carl[0], "client-key": w.carl[1]}),
                args=("--token", w.tokens["tfile"]), kubectl=user("carl"))


def v68_token_flag_over_kubeconfig_token(w):
    return base(w, args=("--token", w.tokens["tfile"]), kubectl=user(sa("tfile")))


def v69_token_file_wins_over_token(w):
    return Case(files={"tok": w.tokens["tfile"], "kubeconfig": KC(cluster(w), token_user(w, tokenFile="tok"))},
                kubectl=user(sa("tfile")))


def v69b_token_flag_with_kubeconfig_token_file(w):
    return Case(files={"tok": w.tokens["tfile"], "kubeconfig": KC(cluster(w), {"tokenFile": "tok"})},
                args=("--token", w.tokens["nobody"]), kubectl=user(sa("tfile")))


def v70_token_file_missing(w):
    return base(w, us={"tokenFile": "no-such-token"}, kubectl=fails("no such file", "cannot read tokenFile", 2))


def v70b_token_file_missing_token_is_the_fallback(w):
    return base(w, us=token_user(w, tokenFile="no-such-token"), kubectl=user(sa("nobody")))


def v71_invalid_token(w):
    return base(w, us={"token": "not-a-valid-token"}, kubectl=fails("You must be logged in to the server", "Unauthorized", 6))


def v72_basic_auth_is_anonymous_here(w):
    # anonymous may not even read discovery: kubectl asks for the list directly (--raw) to see the same 403
    return base(w, us={"username": "kcfguser", "password": BASIC_PASSWORD}, kubectl=user("system:anonymous"),
                kubectl_cmd=("get", "--raw", f"/api/v1/namespaces/{kit.NS}/configmaps"))


def v72b_token_and_basic_auth_refused(w):
    return base(w, us=token_user(w, username="kcfguser", password=BASIC_PASSWORD),
                kubectl=fails("more than one authentication method", "more than one authentication method", 2))


def v72c_user_without_credentials(w):
    # kubectl prompts for a username on stdin; with no terminal it ends with EOF. The plugin says why.
    return base(w, us={}, kubectl=fails("EOF", "no credentials for kubeconfig user 'u'", 2))


def v72d_insecure_server_flag_without_any_credentials(w):
    return Case(kubeconfig=None, args=("-s", w.server, "--insecure-skip-tls-verify"),
                kubectl=fails("EOF", "no credentials", 2))


CASES = {name: fn for name, fn in globals().items() if name.startswith("v") and name[1:3].isdigit()}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_parity(variant, world, parity):
    parity(CASES[variant](world))
