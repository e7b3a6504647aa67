"""CDI's DataVolume mutating webhook, its clone authorization only, as a ValidatingAdmissionPolicy run by the real
kube-apiserver: the test control plane has no webhook server, but CEL's ``authorizer`` asks the API server's own
RBAC authorizer about the requesting user, which is what the webhook's SubjectAccessReviews ask.

Upstream (kubevirt/containerized-data-importer):
- pkg/apiserver/webhooks/datavolume-mutate.go ``Admit``: ``dv.AuthorizeUser(…, ar.Request.UserInfo)``; not
  allowed -> rejected (422) with the reason as the message;
- staging/…/core/v1beta1/authorize.go ``AuthorizeUser``: no clone source -> allowed; an empty source namespace
  is the DataVolume's own;
- …/authorize_utils.go ``CanUserClonePVC``: **source namespace == target namespace -> allowed without any
  SubjectAccessReview** (since CDI #906, 2019: "don't check perms when clone source namespace = dest
  namespace"); otherwise ``sendSubjectAccessReviewsPvc`` over ``getResourceAttributesPvc``: ``create
  datavolumes/source`` or ``create pods`` on the source PVC's name in the source namespace, else "User %s has
  insufficient permissions in clone source namespace %s".

Simplifications: only ``spec.source.pvc`` clones (the plugin makes no other kind); snapshot and DataSource
(``sourceRef``) clones are not checked; CREATE only (the webhook also runs on UPDATE, where a DataVolume's spec
is immutable anyway).
"""
from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

ADMISSION = "admissionregistration.k8s.io"
POLICY = R.Resource(ADMISSION, "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", namespaced=False)
BINDING = R.Resource(ADMISSION, "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
                     namespaced=False)
NAME = "vmstorage-sim-cdi-clone-authorization"
PROBE = "vmstorage-sim/admission-probe"

_PVC = "object.spec.source.pvc"
_SOURCE_NS = f"(has({_PVC}.namespace) && {_PVC}.namespace != '' ? {_PVC}.namespace : request.namespace)"


def _may(group, resource, subresource):
    sub = f".subresource('{subresource}')" if subresource else ""
    return (f"authorizer.group('{group}').resource('{resource}'){sub}.namespace({_SOURCE_NS})"
            f".name({_PVC}.name).check('create').allowed()")


POLICY_BODY = {
    "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": NAME},
    "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": ["cdi.kubevirt.io"], "apiVersions": ["*"],
                                                "operations": ["CREATE"], "resources": ["datavolumes"]}]},
        "validations": [{
            # AuthorizeUser: no PVC clone source -> allowed; CanUserClonePVC: same namespace -> allowed;
            # getResourceAttributesPvc: create datavolumes/source, or create pods, on the source PVC
            "expression": (f"!has(object.spec.source) || !has({_PVC}) || {_SOURCE_NS} == request.namespace || "
                           f"{_may('cdi.kubevirt.io', 'datavolumes', 'source')} || {_may('', 'pods', None)}"),
            "messageExpression": (f"'User ' + request.userInfo.username + ' has insufficient permissions in clone "
                                  f"source namespace ' + {_SOURCE_NS}"),
            "reason": "Invalid",  # handler.go toRejectedAdmissionResponse: http.StatusUnprocessableEntity
        }, {
            # not CDI's: how install_clone_authorization sees that the API server enforces the policy (it
            # loads new policies asynchronously, ~1 s after they are created)
            "expression": f"!has(object.metadata.annotations) || !('{PROBE}' in object.metadata.annotations)",
            "message": "admission probe",
        }],
    },
}
BINDING_BODY = {"apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": NAME}, "spec": {"policyName": NAME, "validationActions": ["Deny"]}}


def install_clone_authorization(kube, timeout: float = 30) -> None:
    """Idempotent, as cdi-operator installs its webhook configuration with CDI; returns once it is enforced."""
    import time

    for res, body in ((POLICY, POLICY_BODY), (BINDING, BINDING_BODY)):
        try:
            kube.create(res, body)
        except errors.Conflict:
            pass
    probe = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
             "metadata": {"name": "admission-probe", "annotations": {PROBE: "true"}},
             "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Mi"}}}}}
    deadline = time.monotonic() + timeout
    while True:
        try:
            kube.create(R.DATAVOLUME, probe, "default", dry_run=True)
        except errors.Invalid:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"ValidatingAdmissionPolicy {NAME} not enforced after {timeout:.0f} s")
        time.sleep(0.2)
