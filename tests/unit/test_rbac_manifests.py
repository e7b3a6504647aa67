"""deploy/rbac/ grants exactly the permissions each engine checks with SelfSubjectAccessReviews (and uses):
preflight.MTC_*_PERMISSIONS for mtc, engines.kubevirt.PERMISSIONS for kubevirt. A permission added to the
code without the manifest (or the reverse) fails here."""
import glob
import os

import pytest
import yaml

from kubectl_vmmig import engines
from kubectl_vmmig.engines.mtc import checks as P
from kubectl_vmmig.engines.kubevirt import engine as KV

RBAC_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "rbac")
ENGINE = "vm-storage.kubevirt-tools.io/engine"
SCOPE = "vm-storage.kubevirt-tools.io/scope"
MIGRATION_OBJECTS = {"virtualmachinestoragemigrationplans", "virtualmachinestoragemigrations",
                     # the fleet unit (migrate -A): the refused MultiNamespace plan, cancel of the fleet migration
                     "multinamespacevirtualmachinestoragemigrationplans", "multinamespacevirtualmachinestoragemigrations"}


def with_watch(perms):
    """``perms`` and the optional ``watch`` beside each ``list`` of a kind the plugin keeps current (resources.WATCHED:
    never asked by a preflight - without it the reads LIST at each refresh, watchcache.Reflector)."""
    from kubectl_vmmig import resources as R

    watched = {(r.group, r.plural) for r in R.WATCHED}
    return set(perms) | {("watch", g, r, s) for v, g, r, s in perms if v == "list" and (g, r) in watched}


def load_roles():
    out = []
    for path in sorted(glob.glob(os.path.join(RBAC_DIR, "*.yaml"))):
        with open(path) as fh:
            out += [d for d in yaml.safe_load_all(fh) if d]
    return out


def granted(engine):
    """{(verb, group, resource, scope)} the manifests of ``engine`` grant."""
    out = set()
    for role in load_roles():
        ann = role["metadata"].get("annotations") or {}
        if ann.get(ENGINE) != engine:
            continue
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"{role['metadata']['name']}: only plain rules"
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    for v in rule["verbs"]:
                        out.add((v, g, r, ann[SCOPE]))
    return out


def test_manifests_are_well_formed_and_never_grant_delete_of_volumes_or_wildcards():
    roles = load_roles()
    assert {r["metadata"]["name"] for r in roles} == {
        "vm-storage-kubevirt-engine", "vm-storage-kubevirt-engine-cluster", "vm-storage-mtc-engine",
        "vm-storage-mtc-engine-mtc", "vm-storage-mtc-engine-cluster", "vm-storage-migration-controller-engine",
        "vm-storage-migration-controller-engine-cluster"}
    for role in roles:
        assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
        scope = role["metadata"]["annotations"][SCOPE]
        # the MTC-namespace role is a Role there; the others are ClusterRoles (bound per namespace or cluster-wide)
        assert role["kind"] == ("Role" if scope == "mtc" else "ClusterRole"), role["metadata"]["name"]
        if scope == "mtc":
            assert role["metadata"]["namespace"] == "openshift-migration"
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
            if "delete" in rule["verbs"]:
                # only the plugin's own migrations.kubevirt.io objects (cancel = delete the migration); no volume
                assert rule["apiGroups"] == ["migrations.kubevirt.io"], role["metadata"]["name"]
                assert set(rule["resources"]) <= MIGRATION_OBJECTS, role["metadata"]["name"]


def test_mtc_manifests_equal_the_checked_permissions():
    want = with_watch(set(P.MTC_READ_PERMISSIONS) | set(P.MTC_WRITE_PERMISSIONS))
    got = granted("mtc")
    assert got - want == set(), "granted but never checked/used"
    assert want - got == set(), "checked but not granted"


def test_mtc_preflight_asks_for_every_permission_of_the_table():
    perms = P.required_permissions("mtc", "ns1", "openshift-migration")
    where = {"ns1": "namespace", "openshift-migration": "mtc", None: "cluster"}
    asked = {(p["verb"], p["group"], p["resource"], where[p["namespace"]]) for p in perms}
    assert "watch" not in {p["verb"] for p in perms}  # optional: never a reason to refuse
    assert with_watch(asked) == granted("mtc")


def test_kubevirt_manifests_equal_the_checked_permissions():
    want = with_watch({(verb, res.group, res.plural + (f"/{sub}" if sub else ""), "namespace" if scoped else "cluster")
                       for verb, res, sub, scoped in KV.PERMISSIONS})
    got = granted("kubevirt")
    assert got - want == set(), "granted but never checked/used"
    assert want - got == set(), "checked but not granted"


@pytest.mark.parametrize("name", engines.names())
def test_every_registered_engine_is_granted_exactly_its_permission_table(name):
    """engines/base.py Engine.permissions(): the table each engine's preflight checks and deploy/rbac grants."""
    want = with_watch({(p.verb, p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, p.scope)
                       for p in engines.engine_class(name).permissions(write=True)})
    got = granted(name)
    assert got - want == set(), "granted but never checked/used"
    assert want - got == set(), "checked but not granted"


@pytest.mark.parametrize("engine", engines.names())
def test_cluster_scoped_grants_are_read_only(engine):
    cluster = {t for t in granted(engine) if t[3] == "cluster"}
    assert cluster and all(v in ("get", "list") for v, *_ in cluster)


def test_migration_controller_manifests_equal_the_checked_permissions():
    from kubectl_vmmig.engines.migration_controller import surface as MC

    want = with_watch({(p[0], p[1].group, p[1].plural + (f"/{p[3]}" if len(p) > 3 else ""), p[2])
                       for p in MC.PERMISSIONS})
    # a same-namespace PVC clone needs no datavolumes/source (CDI authorize_utils.go CanUserClonePVC)
    assert not any(t[2] == "datavolumes/source" for t in want)
    got = granted("migration-controller")
    assert got - want == set(), "granted but never checked/used"
    assert want - got == set(), "checked but not granted"
    assert {t for t in got if t[0] == "delete"} == {("delete", "migrations.kubevirt.io", r, "namespace")
                                                    for r in MIGRATION_OBJECTS}


def test_kubevirt_engine_may_create_clone_datavolumes_and_start_manual_vms():
    """CDI's webhook authorizes a PVC clone of the DataVolume's own namespace without asking for create
    datavolumes/source (authorize_utils.go CanUserClonePVC), so the role grants create datavolumes only;
    finding 6: runStrategy Manual VMs start only through the start subresource."""
    got = granted("kubevirt")
    assert ("create", "cdi.kubevirt.io", "datavolumes", "namespace") in got
    assert not any(t[2] == "datavolumes/source" for t in got)
    assert ("update", "subresources.kubevirt.io", "virtualmachines/start", "namespace") in got
