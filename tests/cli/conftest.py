"""In-process command tests: the real click commands and cli.main (flags, exit codes, output formats), with
click's CliRunner streams and a fake API (fake_api.FakeKube) in place of the cluster."""
import sys
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from tests.cli.fake_api import FakeKube


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def api(monkeypatch):
    """``api(objects, ...)`` -> the FakeKube every command of this test connects to."""
    from kubectl_vmmig.kube import Kube

    made = {}

    def make(objects=(), **kw):
        made["kube"] = FakeKube(objects, **kw)
        return made["kube"]

    monkeypatch.setattr(Kube, "connect", classmethod(lambda cls, conn, **kw: _connected(made["kube"], conn)))
    return make


def _connected(kube, conn):
    if conn.namespace:
        kube.namespace = conn.namespace
    return kube


@pytest.fixture
def run():
    """``run("migrate", ...)`` -> Result(code, out, err) from cli.main, as the plugin binary would exit."""
    from kubectl_vmmig.cli import main

    def invoke(*args, input=None):
        runner = CliRunner()
        with runner.isolation(input=input) as (out, err, _):
            code = main(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
        return Result(code, out.getvalue().decode(), err.getvalue().decode())

    return invoke
