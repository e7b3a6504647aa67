"""A SelfSubjectRulesReview's rules answer a permission as RBAC would (access_rules.py), and Kube.can_i asks one
review per namespace, a SelfSubjectAccessReview only when the rules are incomplete (or for cluster scope)."""
from kubectl_vmmig.access_rules import rule_allows, rules_allow
from kubectl_vmmig.kube import Kube


def rule(verbs, groups, resources, names=()):
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources),
            "resourceNames": list(names)}


def test_verbs_groups_and_resources_match_exactly_or_by_star():
    r = rule(["get", "list"], ["kubevirt.io"], ["virtualmachines"])
    assert rule_allows(r, "list", "kubevirt.io", "virtualmachines")
    assert not rule_allows(r, "patch", "kubevirt.io", "virtualmachines")
    assert not rule_allows(r, "list", "", "virtualmachines")  # the core group is "" and must be named
    assert not rule_allows(r, "list", "kubevirt.io", "virtualmachineinstances")
    assert rule_allows(rule(["*"], ["*"], ["*"]), "create", "cdi.kubevirt.io", "datavolumes", "source")


def test_a_subresource_needs_resource_slash_subresource_or_star_slash_subresource():
    dv = rule(["create"], ["cdi.kubevirt.io"], ["datavolumes"])
    assert not rule_allows(dv, "create", "cdi.kubevirt.io", "datavolumes", "source")
    assert rule_allows(rule(["create"], ["cdi.kubevirt.io"], ["datavolumes/source"]),
                       "create", "cdi.kubevirt.io", "datavolumes", "source")
    assert rule_allows(rule(["update"], ["subresources.kubevirt.io"], ["*/start"]),
                       "update", "subresources.kubevirt.io", "virtualmachines", "start")
    assert not rule_allows(rule(["update"], ["subresources.kubevirt.io"], ["*/start"]),
                           "update", "subresources.kubevirt.io", "virtualmachines", "stop")


def test_a_rule_for_named_objects_does_not_allow_every_object():
    named = rule(["get", "update"], [""], ["configmaps"], ["vm-storage-x"])
    assert not rule_allows(named, "update", "", "configmaps")
    assert rule_allows(named, "update", "", "configmaps", name="vm-storage-x")
    assert rules_allow([named, rule(["update"], [""], ["configmaps"])], "update", "", "configmaps")


class Recorded(Kube):
    """Kube.can_i's choices without a server: the reviews it would POST are answered here and counted."""

    def __init__(self, rules, incomplete=False, allowed=True):
        super().__init__(access=None)
        self.rules, self.incomplete, self.allowed, self.posts = rules, incomplete, allowed, []

    def request(self, method, path, query=None, body=None, **kw):
        self.posts.append((path.rsplit("/", 1)[1], (body.get("spec") or {}).get("namespace")
                           or ((body.get("spec") or {}).get("resourceAttributes") or {}).get("namespace")))
        if path.endswith("selfsubjectrulesreviews"):
            return {"status": {"resourceRules": self.rules, "incomplete": self.incomplete}}
        return {"status": {"allowed": self.allowed}}


def test_one_rules_review_per_namespace_answers_every_namespaced_permission():
    k = Recorded([rule(["get", "list", "patch"], ["kubevirt.io"], ["virtualmachines"])])
    for ns in ("a", "b"):
        assert k.can_i("patch", "virtualmachines", "kubevirt.io", ns) == (True, "")
        assert k.can_i("list", "virtualmachines", "kubevirt.io", ns) == (True, "")
        assert k.can_i("create", "datavolumes", "cdi.kubevirt.io", ns) == (False, "")
    assert k.posts == [("selfsubjectrulesreviews", "a"), ("selfsubjectrulesreviews", "b")]


def test_incomplete_rules_ask_an_access_review_for_what_they_do_not_allow():
    k = Recorded([rule(["list"], ["kubevirt.io"], ["virtualmachines"])], incomplete=True, allowed=True)
    assert k.can_i("list", "virtualmachines", "kubevirt.io", "a") == (True, "")
    assert k.can_i("patch", "virtualmachines", "kubevirt.io", "a")[0] is True  # the webhook's yes
    assert k.posts == [("selfsubjectrulesreviews", "a"), ("selfsubjectaccessreviews", "a")]


def test_cluster_scoped_permissions_are_access_reviews_asked_once_per_command():
    k = Recorded([])
    for _ in range(3):
        assert k.can_i("list", "storageclasses", "storage.k8s.io", None)[0] is True
    assert k.posts == [("selfsubjectaccessreviews", None)]


def test_a_cluster_wide_list_answers_its_own_permission():
    from kubectl_vmmig import errors
    from kubectl_vmmig import resources as R

    class Lists(Recorded):
        def request(self, method, path, query=None, body=None, **kw):
            if method == "GET":
                self.posts.append(("GET", path))
                if "nodes" in path:
                    raise errors.Forbidden("nodes is forbidden", status=403)
                return {"items": []}
            return super().request(method, path, query, body, **kw)

    k = Lists([])
    k.access = type("A", (), {"server": "", "namespace": "default"})()
    k.items(R.STORAGECLASS)
    try:
        k.items(R.NODE)
    except errors.Forbidden:
        pass
    assert k.can_i("list", "storageclasses", "storage.k8s.io", None) == (True, "")
    assert k.can_i("list", "nodes", "", None)[0] is False
    assert [p for p in k.posts if p[0] != "GET"] == []  # no review asked: the LISTs answered
    k.items(R.PVC, "ns1")  # a namespaced LIST says nothing about cluster scope
    assert k.can_i("list", "persistentvolumeclaims", "", None)[0] is True
    assert k.posts[-1] == ("selfsubjectaccessreviews", None)
