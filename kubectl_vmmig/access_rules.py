"""Pure: does a SelfSubjectRulesReview's rule list allow one request? (RBAC's own matching.)

``kubectl auth can-i --list`` asks the API server for every rule of the user in a namespace with ONE
SelfSubjectRulesReview (kubernetes/kubectl pkg/cmd/auth/cani.go ``RunAccessList``); kube-apiserver answers it
from the authorizers' ``RulesFor`` (kubernetes pkg/registry/authorization/selfsubjectrulesreview/rest.go
``Create``). RBAC enumerates every rule that applies in the namespace (its ClusterRoleBindings and the
namespace's RoleBindings, the very bindings its ``Authorize`` visits), so for a namespaced request in that
namespace the list is exact; an authorizer that cannot enumerate (a webhook, the Node authorizer for a node)
sets ``status.incomplete``, and then a request the rules do not allow is asked again with a
SelfSubjectAccessReview (kubectl prints "the list may be incomplete" in that case: cani.go ``printStatus``).
Rules only allow (RBAC has no deny), so a rule that allows is an answer whatever ``incomplete`` says.

The matching follows kubernetes pkg/apis/rbac/v1/evaluation_helpers.go (``VerbMatches``, ``APIGroupMatches``,
``ResourceMatches`` with ``resource/subresource`` and ``*/subresource``, ``ResourceNameMatches``) as
plugin/pkg/auth/authorizer/rbac/rbac.go ``RuleAllows`` combines them.
"""
from typing import Iterable, Optional


def _verb(rule, verb):
    return any(v in ("*", verb) for v in rule.get("verbs") or [])


def _group(rule, group):
    return any(g in ("*", group) for g in rule.get("apiGroups") or [])


def _resource(rule, resource, subresource):
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.get("resources") or []:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _name(rule, name):
    names = rule.get("resourceNames") or []
    return not names or name in names


def rule_allows(rule: dict, verb: str, group: str, resource: str, subresource: Optional[str] = None,
                name: Optional[str] = None) -> bool:
    return (_verb(rule, verb) and _group(rule, group or "") and _resource(rule, resource, subresource)
            and _name(rule, name or ""))


def rules_allow(rules: Iterable[dict], verb: str, group: str, resource: str, subresource: Optional[str] = None,
                name: Optional[str] = None) -> bool:
    """``rules``: a SelfSubjectRulesReview's ``status.resourceRules``."""
    return any(rule_allows(r, verb, group, resource, subresource, name) for r in rules or [])
