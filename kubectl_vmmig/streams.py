"""kubectl's IOStreams: every command writes through the streams it was given (data on ``out``, messages on
``err``), so in-process tests capture them and nothing below the commands touches ``sys.std*``."""
import json
import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass
class IOStreams:
    in_: TextIO
    out: TextIO
    err: TextIO

    @classmethod
    def system(cls) -> "IOStreams":
        """The process streams as they are now (click's CliRunner swaps them in tests)."""
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def say(self, message: str) -> None:
        """One progress or warning line on stderr."""
        self.err.write(message + "\n")
        self.err.flush()

    def out_is_terminal(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def interactive(self) -> bool:
        """A person can answer a question (stdin and stderr are terminals)."""
        return bool(getattr(self.in_, "isatty", lambda: False)() and getattr(self.err, "isatty", lambda: False)())


def write_document(doc, output: str, stream: TextIO) -> None:
    """``-o json|yaml`` for any document (a preview, a reference, findings)."""
    if output == "yaml":
        import yaml

        stream.write(yaml.safe_dump(doc, sort_keys=False))
    else:
        stream.write(json.dumps(doc, indent=2) + "\n")
