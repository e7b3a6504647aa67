"""Parity, part 1: kubeconfig files, merge and precedence, path resolution, contexts (clientcmd loader.go,
client_config.go). Variant numbers follow the connection-parity audit (issue 17)."""

import pytest

from . import kit
from .conftest import cluster, sa, token_user
from .kit import Case, fails, kubeconfig, ok, user

pytestmark = pytest.mark.cluster
KC = kubeconfig


def v01_baseline_admin(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w, "admin"))}, kubectl=ok())


def v02_baseline_nobody(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w))}, kubectl=user(sa("nobody")))


def v03_relative_ca_cert_key(w):
    # token and client certificate: the API server's x509 authenticator runs first -> carl, on both
    files = {"pki/ca.crt": kit.read(w.ca), "pki/c.crt": kit.read(w.carl[0]), "pki/c.key": kit.read(w.carl[1]),
             "kubeconfig": KC(cluster(w, **{"certificate-authority": "pki/ca.crt"}),
                              token_user(w, **{"client-certificate": "pki/c.crt", "client-key": "pki/c.key"}))}
    return Case(files=files, kubectl=user("carl"))


def v04_relative_token_file(w):
    return Case(files={"tok": w.tokens["tfile"], "kubeconfig": KC(cluster(w), {"tokenFile": "tok"})},
                kubectl=user(sa("tfile")))


def v05_relative_paths_in_second_file(w):
    first = KC(cluster(w), token_user(w), namespace="demo")
    first.update(clusters=[], users=[])
    second = {"clusters": [{"name": "s", "cluster": {"server": w.server, "certificate-authority": "ca.crt"}}],
              "users": [{"name": "u", "user": {"tokenFile": "tok"}}]}
    return Case(files={"a/kubeconfig": first, "b/kubeconfig": second, "b/ca.crt": kit.read(w.ca),
                       "b/tok": w.tokens["tfile"]},
                kubeconfig=None, env={"KUBECONFIG": "{dir}/a/kubeconfig:{dir}/b/kubeconfig"},
                kubectl=user(sa("tfile"), "demo"))


def v06_relative_kubeconfig_flag(w):
    files = {"v/pki/ca.crt": kit.read(w.ca),
             "v/kubeconfig": KC(cluster(w, **{"certificate-authority": "pki/ca.crt"}), token_user(w))}
    return Case(files=files, kubeconfig=None, args=("--kubeconfig", "kubeconfig"), cwd="v",
                kubectl=user(sa("nobody")))


def v07_symlinked_kubeconfig_resolves_against_the_link(w):
    files = {"real/pki/ca.crt": kit.read(w.ca),
             "real/kubeconfig": KC(cluster(w, **{"certificate-authority": "pki/ca.crt"}), token_user(w))}
    return Case(files=files, links={"link/kubeconfig": "real/kubeconfig"}, kubeconfig="link/kubeconfig",
                kubectl=fails("unable to read certificate-authority", "link/pki/ca.crt", 2))


def v08_merge_first_file_wins(w):
    a = KC(cluster(w), token_user(w))
    b = KC(cluster(w, server="https://127.0.0.1:1"), token_user(w, "alice"), namespace="demo")
    return Case(files={"a": a, "b": b}, kubeconfig=None, env={"KUBECONFIG": "{dir}/a:{dir}/b"},
                kubectl=user(sa("nobody")))


def v09_current_context_from_first_file_setting_it(w):
    a = KC(cluster(w), token_user(w), current=None)
    b = KC(cluster(w), token_user(w), current="ca", extra_contexts=[("ca", {"cluster": "s", "user": "al",
                                                                            "namespace": "demo"})],
           extra_users=[("al", token_user(w, "alice"))])
    c = KC(cluster(w), token_user(w), current="c")
    return Case(files={"a": a, "b": b, "c": c}, kubeconfig=None, env={"KUBECONFIG": "{dir}/a:{dir}/b:{dir}/c"},
                kubectl=user("alice", "demo"))


def v10_missing_file_in_list_skipped(w):
    return Case(files={"a": KC(cluster(w), token_user(w))}, kubeconfig=None,
                env={"KUBECONFIG": "{dir}/nope:{dir}/a"}, kubectl=user(sa("nobody")))


def v11_empty_list_entries(w):
    return Case(files={"a": KC(cluster(w), token_user(w))}, kubeconfig=None, env={"KUBECONFIG": ":{dir}/a::"},
                kubectl=user(sa("nobody")))


def v12_only_missing_files(w):
    return Case(kubeconfig=None, env={"KUBECONFIG": "{dir}/nope1:{dir}/nope2"},
                kubectl=fails("localhost:8080", "no cluster configured", 2))


def v13_home_kube_config(w):
    return Case(files={"home/.kube/config": KC(cluster(w), token_user(w), namespace="demo")}, kubeconfig=None,
                kubectl=user(sa("nobody"), "demo"))


def v14_empty_kubeconfig_env_means_home(w):
    case = v13_home_kube_config(w)
    case.env = {"KUBECONFIG": ""}
    return case


def v15_kubeconfig_flag_over_env(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w)), "other": KC(cluster(w), token_user(w, "alice"))},
                env={"KUBECONFIG": "{dir}/other"}, kubectl=user(sa("nobody")))


def _dup(section):
    def build(w):
        cfg = KC(cluster(w), token_user(w))
        cfg[section].append(dict(cfg[section][0]))
        return Case(files={"kubeconfig": cfg}, kubectl=fails("duplicate name", "duplicate", 2))
    return build


v16_duplicate_user_name_in_one_file = _dup("users")
v16b_duplicate_cluster_name_in_one_file = _dup("clusters")
v16c_duplicate_context_name_in_one_file = _dup("contexts")


def v17_malformed_yaml(w):
    return Case(files={"kubeconfig": "apiVersion: v1\nclusters: [unclosed\nusers: []\n"},
                kubectl=fails("yaml", "not valid YAML", 2))


def v18_malformed_yaml_second_in_list(w):
    return Case(files={"a": KC(cluster(w), token_user(w)), "b": "clusters: [unclosed\n"}, kubeconfig=None,
                env={"KUBECONFIG": "{dir}/a:{dir}/b"}, kubectl=fails("yaml", "not valid YAML", 2))


def v19_kubeconfig_is_a_directory(w):
    return Case(files={"d/x": "x"}, kubeconfig="d", kubectl=fails("is a directory", "Is a directory", 2))


def v20_directory_in_the_list(w):
    return Case(files={"a": KC(cluster(w), token_user(w)), "d/x": "x"}, kubeconfig=None,
                env={"KUBECONFIG": "{dir}/a:{dir}/d"}, kubectl=fails("is a directory", "Is a directory", 2))


def v21_unknown_fields(w):
    cfg = KC(dict(cluster(w), color="red"), token_user(w, hat="big"), top={"whatever": {"x": 1}})
    cfg["contexts"][0]["context"]["mood"] = "fine"
    return Case(files={"kubeconfig": cfg}, kubectl=user(sa("nobody")))


def v22_empty_file(w):
    return Case(files={"kubeconfig": ""}, kubectl=fails("localhost:8080", "no cluster configured", 2))


def v23_kubeconfig_flag_missing_file(w):
    return Case(kubeconfig="missing/kubeconfig", kubectl=fails("no such file", "does not exist", 2))


def v24_wrong_kind(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w), top={"apiVersion": "v2", "kind": "Pod"})},
                kubectl=fails('no kind "Pod"', "is a Pod of v2, not a kubeconfig", 2))


def v24b_no_apiversion_no_kind_defaults_to_config(w):
    cfg = KC(cluster(w), token_user(w))
    del cfg["apiVersion"], cfg["kind"]
    return Case(files={"kubeconfig": cfg}, kubectl=user(sa("nobody")))


def _multi(w):
    return KC(cluster(w), token_user(w), extra_clusters=[("dead", {"server": "https://127.0.0.1:1"})],
              extra_users=[("al", token_user(w, "alice")), ("tf", token_user(w, "tfile"))],
              extra_contexts=[("alice", {"cluster": "s", "user": "al", "namespace": "demo"}),
                              ("deadctx", {"cluster": "dead", "user": "tf", "namespace": "demo"}),
                              ("noclus", {"cluster": "ghost", "user": "u"}),
                              ("nouser", {"cluster": "s", "user": "ghost", "namespace": "demo"})])


def _with(args, expect):
    return lambda w: Case(files={"kubeconfig": _multi(w)}, args=args, kubectl=expect)


v25_context_flag = _with(("--context", "alice"), user("alice", "demo"))
v26_context_flag_missing = _with(("--context", "ghost"), fails("context was not found for specified context: ghost", "context 'ghost' not found", 2))
v27_cluster_flag_good_over_dead = _with(("--context", "deadctx", "--cluster", "s"), user(sa("tfile"), "demo"))
v28_cluster_flag_dead = _with(("--cluster", "dead"), fails("127.0.0.1:1 was refused", "cannot reach the API server at https://127.0.0.1:1", 6))
v29_user_flag = _with(("--user", "al"), user("alice"))
v30_user_flag_missing = _with(("--user", "ghost"), fails('auth info "ghost" does not exist', "user 'ghost' not found", 2))
v31_cluster_flag_missing = _with(("--cluster", "ghost"), fails('no server found for cluster "ghost"', "cluster 'ghost' not found", 2))
v33_namespace_flag_overrides_context = _with(("-n", "kube-public"), user(sa("nobody"), "kube-public"))
v31b_context_checked_before_user = _with(("--context", "ghost", "--user", "ghost"),
                                         fails("context was not found for specified context: ghost",
                                               "context 'ghost' not found", 2))
v35_context_names_missing_cluster = _with(("--context", "noclus"), fails("localhost:8080", "cluster 'ghost' of context 'noclus' not found", 2))
v36_context_names_missing_user = _with(("--context", "nouser"), fails("EOF", "user 'ghost' of context 'nouser' not found", 2))


def v32_namespace_from_current_context(w):
    return Case(files={"kubeconfig": dict(_multi(w), **{"current-context": "alice"})}, kubectl=user("alice", "demo"))


def v34_context_without_namespace_is_default(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w), namespace=None)}, kubectl=user(sa("nobody"), "default"))


def v37_current_context_missing(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w), current="ghost")},
                kubectl=fails("context was not found for specified context: ghost", "context 'ghost' not found", 2))


def v38_current_context_missing_with_server_flags(w):
    case = v37_current_context_missing(w)
    case.args = ("-s", w.server, "--certificate-authority", w.ca, "--token", w.tokens["nobody"])
    return case


def v39_no_current_context(w):
    return Case(files={"kubeconfig": KC(cluster(w), token_user(w), current=None)},
                kubectl=fails("localhost:8080", "no cluster configured", 2))


CASES = {name: fn for name, fn in globals().items() if name.startswith("v") and name[1:3].isdigit()}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_parity(variant, world, parity):
    parity(CASES[variant](world))

