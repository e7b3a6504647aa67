"""Time and condition helpers shared by the controller stand-ins: timestamps as Kubernetes serializes
metav1.Time, Go durations as the controllers print them, and status conditions (k8s.io/apimachinery
meta.SetStatusCondition and the controllers' own condition setters)."""
import datetime
from typing import List, Optional

# ---- time ---------------------------------------------------------------------------------------
def now() -> str:
    """RFC3339 UTC timestamp with second precision, as Kubernetes serializes metav1.Time."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def seconds_since(text: Optional[str]) -> float:
    t = parse_time(text)
    if t is None:
        return 0.0
    return max(0.0, (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def go_duration(seconds: float) -> str:
    """Go ``time.Duration.Round(time.Second).String()``: 0s, 5s, 1m30s, 1h2m3s."""
    s = int(round(seconds))
    if s == 0:
        return "0s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + f"{sec}s"


def parse_go_duration(text: Optional[str]) -> float:
    """Inverse of go_duration for the h/m/s forms we write."""
    if not text:
        return 0.0
    total, num = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        else:
            total += float(num or 0) * {"h": 3600, "m": 60, "s": 1}.get(ch, 0)
            num = ""
    return total


# ---- conditions ---------------------------------------------------------------------------------
def _conditions(obj: dict) -> List[dict]:
    return obj.setdefault("status", {}).setdefault("conditions", [])


def get_condition(obj: dict, ctype: str) -> Optional[dict]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(obj: dict, ctype: str, status: str = "True", reason: Optional[str] = None,
                  category: Optional[str] = None, message: Optional[str] = None,
                  durable: Optional[bool] = None) -> bool:
    """Set an MTC-format condition in obj.status.conditions (mig-controller ``Conditions.SetCondition``).

    Fields: type, status, reason, category, message, lastTransitionTime, durable. lastTransitionTime
    changes only when some other field changes (MTC updates it on any change). Returns True if changed.
    """
    new = {"type": ctype, "status": status, "category": category}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    if durable:
        new["durable"] = True
    conds = _conditions(obj)
    for i, c in enumerate(conds):
        if c.get("type") == ctype:
            old = {k: v for k, v in c.items() if k != "lastTransitionTime"}
            if old == {k: v for k, v in new.items() if v is not None}:
                return False
            new["lastTransitionTime"] = now()
            conds[i] = {k: v for k, v in new.items() if v is not None}
            return True
    new["lastTransitionTime"] = now()
    conds.append({k: v for k, v in new.items() if v is not None})
    return True


def set_k8s_condition(obj: dict, ctype: str, status: str = "True", reason: str = "", message: str = "",
                      probe: bool = False) -> bool:
    """Set a core-Kubernetes/KubeVirt-style condition (type, status, reason, message, lastTransitionTime
    [, lastProbeTime]). lastTransitionTime changes only when ``status`` changes, as in Kubernetes."""
    conds = _conditions(obj)
    for c in conds:
        if c.get("type") == ctype:
            changed = (c.get("status"), c.get("reason", ""), c.get("message", "")) != (status, reason, message)
            if c.get("status") != status:
                c["lastTransitionTime"] = now()
            c["status"] = status
            if reason:
                c["reason"] = reason
            else:
                c.pop("reason", None)
            if message:
                c["message"] = message
            else:
                c.pop("message", None)
            return changed
    c = {"type": ctype, "status": status, "lastTransitionTime": now()}
    if probe:
        c["lastProbeTime"] = None
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    conds.append(c)
    return True


def remove_condition(obj: dict, ctype: str) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    kept = [c for c in conds if c.get("type") != ctype]
    if len(kept) != len(conds):
        obj["status"]["conditions"] = kept
        return True
    return False
