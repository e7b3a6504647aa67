"""Who may talk to the test control plane, and the kubeconfig files that say so.

Static tokens (kube-apiserver --token-auth-file) for three users: ``admin`` in system:masters; ``alice``, whom
tests bind to roles; ``nobody``, never granted anything, for tests that need "no rights at all". Client
certificates from the control plane's client CA (--client-ca-file: CN = user, O = group) for users made on
demand: a test that binds roles to a user takes a fresh one (ControlPlane.user_kubeconfig), because tests run in
parallel and a grant to a shared user reaches every test using it while it lasts.
"""
import os
import subprocess

import yaml

ADMIN_TOKEN = "vmstorage-admin-token"
ALICE_TOKEN = "vmstorage-alice-token"
NOBODY_TOKEN = "vmstorage-nobody-token"
TOKENS_CSV = (f'{ADMIN_TOKEN},admin,uid-admin,"system:masters"\n{ALICE_TOKEN},alice,uid-alice,\n'
              f'{NOBODY_TOKEN},nobody,uid-nobody,\n')


def client_cert(ca_cert, ca_key, out_dir, cn, org=None):
    """A client certificate for ``cn`` (group ``org``) signed by the control plane's client CA: (cert, key)."""
    os.makedirs(out_dir, exist_ok=True)
    key, csr, crt = (os.path.join(out_dir, f"{cn}.{ext}") for ext in ("key", "csr", "crt"))
    subj = f"/CN={cn}" + (f"/O={org}" if org else "")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", key, "-out", csr],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "30", "-out", crt], check=True, capture_output=True)
    return crt, key


def write_kubeconfig(path, server, ca_file, users, current):
    """``users``: (context, user, credentials) triples, credentials as a kubeconfig ``user`` entry."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "sandbox", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": user, "user": cred} for _, user, cred in users],
        "contexts": [{"name": ctx, "context": {"cluster": "sandbox", "user": user, "namespace": "default"}}
                     for ctx, user, _ in users],
    }
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    os.chmod(path, 0o600)
    return path
