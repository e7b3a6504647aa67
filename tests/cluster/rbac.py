"""Rights for a test's own user on the real API server: Roles/ClusterRoles and their bindings, deleted again by
``revoke()``. Tests run in parallel against one API server, so each grant names a user of its own
(credentials.py makes its client certificate): a grant to a shared user would reach every test using it."""
from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

RBAC = "rbac.authorization.k8s.io"
ROLE = R.Resource(RBAC, "v1", "roles", "Role")
ROLEBINDING = R.Resource(RBAC, "v1", "rolebindings", "RoleBinding")
CLUSTERROLE = R.Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTERROLEBINDING = R.Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False)


def binding(kind: str, role: dict, ns, subjects) -> dict:
    """A RoleBinding (``ns``) or ClusterRoleBinding (``ns`` None) of ``role``, named as it."""
    md = {"name": role["metadata"]["name"]}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": md, "subjects": subjects,
            "roleRef": {"apiGroup": RBAC, "kind": role["kind"], "name": role["metadata"]["name"]}}


def user_subject(user: str) -> list:
    return [{"kind": "User", "name": user, "apiGroup": RBAC}]


class Grants:
    """What one test granted, in order; ``revoke()`` deletes it again (newest first; a NotFound is fine)."""

    def __init__(self, kube):
        self.kube, self.created = kube, []

    def create(self, res, body: dict, ns=None) -> None:
        self.kube.create(res, body, ns)
        self.created.append((res, body["metadata"]["name"], ns))

    def rules(self, user: str, name: str, rules: list, namespace=None) -> "Grants":
        """``rules`` for ``user``: a Role + RoleBinding in ``namespace``, or cluster wide without one."""
        if namespace:
            role = {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name, "namespace": namespace},
                    "rules": rules}
            self.create(ROLE, role, namespace)
            self.create(ROLEBINDING, binding("RoleBinding", role, namespace, user_subject(user)), namespace)
        else:
            role = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
            self.create(CLUSTERROLE, role)
            self.create(CLUSTERROLEBINDING, binding("ClusterRoleBinding", role, None, user_subject(user)))
        return self

    def revoke(self) -> None:
        for res, name, ns in reversed(self.created):
            try:
                self.kube.delete(res, name, ns)
            except errors.NotFound:
                pass
        self.created = []
