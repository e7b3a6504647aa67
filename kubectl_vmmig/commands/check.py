"""`kubectl vm-storage check VM… --to SC`: the preflight only; exit 0 when nothing blocks, else 3."""
import json
import sys

import click

from ..cli import connection_options
from .migrate import OUTPUTS, MigrateOptions, migrate_flags


@click.command("check")
@migrate_flags
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="table", show_default=True, help="Output format.")
@connection_options()
def command(conn, vms, to, selector, all_, mode, engine, mtc_namespace, access_mode, volume_mode, stage, hooks,
            output):
    """Run the preflight checks for a migration and print the findings (writes nothing).

    \b
    Examples:
      kubectl vm-storage check vm1 --to fast
      kubectl vm-storage check --all --to fast --mode live -o json
    """
    from .. import errors
    from ..findings import blocking
    from .migrate_run import prepare, print_findings

    opts = MigrateOptions(vms=vms, to=to, namespace=conn.namespace, selector=selector, all=all_, mode=mode,
                          engine=engine, mtc_namespace=mtc_namespace, access_mode=access_mode,
                          volume_mode=volume_mode, stage=stage, hooks=hooks, dry_run="client", output=output)
    opts.validate()
    prep = prepare(opts, conn, write=True)
    findings = prep.findings
    if output == "json":
        sys.stdout.write(json.dumps({"checks": findings}, indent=2) + "\n")
    elif output == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump({"checks": findings}, sort_keys=False))
    else:
        print_findings(findings)
    bad = blocking(findings)
    if bad:
        raise errors.PreflightRefused(f"{len(bad)} blocking problem(s): {bad[0]['message']}",
                                      "fix them and run check again")
