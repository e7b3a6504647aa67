"""Go's duration grammar (src/time/format.go ParseDuration), in seconds: the one reader for the plugin's two uses
- kubeconfig.parse_timeout (kubectl's --request-timeout: client-go clientcmd.ParseTimeout falls back to
ParseDuration) and progress.go_duration_seconds (the durations controllers print, metav1.Duration)."""
import re
from typing import Optional

UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_seconds(text: str) -> Optional[float]:
    """Seconds of a Go duration ('1m30s', '1.5h', '250ms', '-5s', '+1ns', a bare '0'); None where ParseDuration
    returns an error (no unit, an unknown unit, anything else around the numbers)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    parts = _PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    total = sum(float(n) * UNITS[u] for n, u in parts)
    return -total if text.startswith("-") else total
