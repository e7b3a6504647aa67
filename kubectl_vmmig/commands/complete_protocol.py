"""The hidden `__complete` command (kubectl's plugin-completion protocol); it lives in completion.py.

A module of its own because cli.COMMANDS maps each verb to a module's ``command`` attribute.
"""
from .completion import complete_command as command  # noqa: F401
