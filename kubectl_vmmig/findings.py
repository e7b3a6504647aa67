"""Findings: what a check says, ``{name, severity: ok|warning|error, message}`` (the ``check -o json`` contract).

Every engine's checks build their findings here, and ``blocking()`` is the one rule for "this refuses the run".
"""
from typing import List

OK, WARNING, ERROR = "ok", "warning", "error"


def finding(name, severity, message):
    return {"name": name, "severity": severity, "message": message}


def blocking(findings) -> List[dict]:
    return [f for f in findings if f["severity"] == ERROR]
