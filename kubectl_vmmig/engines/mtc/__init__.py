"""The MTC engine: MigPlan + MigMigration (migration.openshift.io). engine.py is the shell; build.py,
checks.py and progress.py are pure."""
