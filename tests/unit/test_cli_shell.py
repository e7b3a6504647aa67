"""The CLI shell: lazy group, kubectl flag spellings, one-line errors with documented exit codes."""
import pytest

from kubectl_vmmig import cli, errors, exits


def run(args, capsys):
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for verb in ("migrate", "status", "check", "cancel", "rollback", "version", "completion"):
        assert verb in out


@pytest.mark.parametrize("args", [["version", "--bogus"], ["nosuchverb"], ["version", "-o", "xml"],
                                  ["version", "-v", "loud"]])
def test_usage_errors_are_one_line_exit_2(args, capsys):
    code, out, err = run(args, capsys)
    assert code == errors.BAD_INPUT
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0]


@pytest.mark.parametrize("spelling", [["-v", "6"], ["-v=6"], ["--v=6"], ["-v6"], ["--v", "6"]])
def test_verbosity_spellings(spelling, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    code, out, _ = run(["version", "--client", *spelling], capsys)
    assert code == 0
    assert exits.STATE["verbosity"] == 6


def test_no_cluster_prints_the_client_version_then_fails_like_kubectl_version(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    code, out, err = run(["version", "-n", "demo"], capsys)   # -n accepted, as kubectl version accepts it
    assert code == errors.BAD_INPUT
    assert out.startswith("Client Version: ") and "Server Version" not in out
    assert "make sandbox" in err and err.count("\n") == 1


@pytest.mark.parametrize("value, kept", [("true", True), ("True", True), ("1", True), ("false", False),
                                         ("0", False)])
def test_kubectl_bool_flag_values(value, kept):
    out = cli.kubectl_bool_flags(["status", f"--insecure-skip-tls-verify={value}", "--", "--insecure-skip-tls-verify=x"])
    assert out == (["status", "--insecure-skip-tls-verify"] if kept else ["status"]) + ["--", "--insecure-skip-tls-verify=x"]


def test_kubectl_bool_flag_bad_value_is_a_usage_error(capsys):
    code, out, err = run(["version", "--client", "--insecure-skip-tls-verify=maybe"], capsys)
    assert code == errors.BAD_INPUT and "invalid argument 'maybe'" in err


def test_internal_errors_are_one_line(capsys, monkeypatch):
    def boom(**kw):
        raise ValueError("kaput")

    monkeypatch.setattr(cli.cli, "main", boom)
    code, _, err = run([], capsys)
    assert code == errors.INTERNAL
    assert err.count("\n") == 1 and "ValueError: kaput" in err and "-v 9" in err


def test_vmstorage_errors_map_to_their_exit_codes(capsys, monkeypatch):
    for exc, code_ in ((errors.PreflightRefused("x", "fix"), 3), (errors.MigrationFailed("x"), 4),
                       (errors.MigrationCanceled("x"), 5), (errors.ConnectionFailed("x"), 6),
                       (errors.Forbidden("x"), 7), (errors.NotFoundInput("x"), 2)):
        def raiser(**kw):
            raise exc

        monkeypatch.setattr(cli.cli, "main", raiser)
        code, _, err = run([], capsys)
        assert code == code_ and err.startswith("error: x")


def test_prog_name_as_plugin(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/x/kubectl-vm_storage"])
    monkeypatch.delenv("KUBECTL_PATH", raising=False)
    assert cli.prog_name() == "kubectl vm-storage"
    monkeypatch.setenv("KUBECTL_PATH", "/usr/bin/oc")
    assert cli.prog_name() == "oc vm-storage"
