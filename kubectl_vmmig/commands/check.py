"""`kubectl vm-storage check VM… --to SC`: the preflight only; exit 0 when nothing blocks, else 3."""
import click

from ..cli import connection_options
from ..streams import IOStreams, write_document
from .migrate import OUTPUTS, MigrateOptions, migrate_flags


class CheckOptions(MigrateOptions):
    """migrate's flags, judged as a client dry run would; prints the findings instead of a preview."""

    def run(self, conn):
        from .. import errors
        from ..findings import blocking
        from .migrate_run import prepare, print_findings

        from ..findings import OK, finding

        prep = prepare(self, conn, write=True)
        findings = prep.findings
        if prep.engine is not None and prep.engine.picked:  # say which engine auto picked and why
            findings = [finding("engine", OK, prep.engine.picked)] + findings
        if self.output == "table":
            print_findings(findings, self.streams.out)
        else:
            write_document({"checks": findings}, self.output, self.streams.out)
        bad = blocking(findings)
        if bad:
            raise errors.PreflightRefused(f"{len(bad)} blocking problem(s): {bad[0]['message']}",
                                          "fix them and run check again")


@click.command("check")
@migrate_flags
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="table", show_default=True, help="Output format.")
@connection_options()
def command(conn, **flags):
    """Run the preflight checks for a migration and print the findings (writes nothing).

    \b
    Examples:
      kubectl vm-storage check vm1 --to fast
      kubectl vm-storage check --all --to fast --mode live -o json
    """
    opts = CheckOptions.from_flags(conn, streams=IOStreams.system(), dry_run="client", wait=False, **flags)
    opts.validate()
    opts.run(conn)
