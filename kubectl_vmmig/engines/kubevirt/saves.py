"""When the kubevirt engine writes a driven record back (shell policy, pure apart from the clock)."""
import time
from typing import Callable, Optional

from . import build as B


class Saves:
    """When a driven record is written back (each write is a request, a fleet's passes would otherwise write
    every record on every pass): at once when its state changed (build.record_state), a new progress message at
    most every ``every`` seconds (``status`` shows it, nothing depends on it), and whatever is left at the end."""

    def __init__(self, rec: dict, every: float = 30.0, clock: Optional[Callable[[], float]] = None):
        self.every, self.clock = every, clock or time.monotonic
        self.saved(rec)

    def saved(self, rec: dict) -> None:
        self.state, self.text, self.at = B.record_state(rec), repr(rec), self.clock()

    def due(self, rec: dict, final: bool = False) -> bool:
        if repr(rec) == self.text:
            return False
        return final or B.record_state(rec) != self.state or self.clock() - self.at >= self.every
