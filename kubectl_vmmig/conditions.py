"""Readers of ``status.conditions``, in one place. MTC writes conditions without ``status`` (it means True);
Kubernetes-style objects write True and False."""
from typing import Dict, List, Optional


def listed(obj: Optional[dict]) -> List[dict]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def true_conditions(obj: Optional[dict]) -> List[dict]:
    """The conditions that hold (status True, or absent as MTC writes them), in their order."""
    return [c for c in listed(obj) if str(c.get("status", "True")) == "True"]


def true_by_type(obj: Optional[dict]) -> Dict[str, dict]:
    """type -> condition, only those that hold."""
    return {c["type"]: c for c in true_conditions(obj) if c.get("type")}


def by_type(obj: Optional[dict]) -> Dict[str, dict]:
    """type -> condition, whatever its status."""
    return {c.get("type"): c for c in listed(obj)}


def condition(obj: Optional[dict], ctype: str) -> Optional[dict]:
    """The condition ``ctype`` when it holds, else None."""
    return next((c for c in true_conditions(obj) if c.get("type") == ctype), None)
