"""A kubeconfig's YAML without importing PyYAML, for the files it can read exactly as PyYAML would.

Why: every command reads the kubeconfig, and importing PyYAML costs about 13 ms (its reader and resolver
compile large regular expressions at import) - a tenth of the start-up. Kubeconfigs are nearly always written
by ``kubectl config`` or a cluster installer in the same plain block style: nested mappings and sequences of
plain or simply quoted scalars on one line each.

``load`` parses that subset and raises ``Unsupported`` for anything else - flow collections, block scalars,
anchors, tags, comments after a value, escapes, non-ASCII, tabs, document markers, keys or scalars whose type
PyYAML's YAML 1.1 resolver (yaml/resolver.py, Resolver.add_implicit_resolver) could read otherwise than as we
would (``on``, ``0755``, ``1:20``, ``2001-01-01``, ``.5``, ``=``, ``<<``...). The caller then asks PyYAML,
which also gives the errors of invalid files. tests/unit/test_kubeconfig_yaml.py holds the two equal on
kubeconfigs written by the real kubectl and on randomly generated documents.
"""
import re


class Unsupported(Exception):
    """Outside the subset: let PyYAML read the file."""


# PyYAML's implicit resolvers for bool and null (yaml/resolver.py): only these words are not strings.
BOOLS = {"yes": True, "Yes": True, "YES": True, "true": True, "True": True, "TRUE": True, "on": True,
         "On": True, "ON": True, "no": False, "No": False, "NO": False, "false": False, "False": False,
         "FALSE": False, "off": False, "Off": False, "OFF": False}
NULLS = {"~", "null", "Null", "NULL"}
KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_./-]*):(?: +(.*))?\Z")
# A plain scalar that starts with a letter, '_', '/', './', '../' or '-'/'--' and a letter (an exec plugin's
# flags): never a number, timestamp or indicator.
PLAIN = re.compile(r"(?:[A-Za-z_/]|\.\.?/|--?[A-Za-z_])[^#'\"]*\Z")
DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
SINGLE_QUOTED = re.compile(r"'((?:[^']|'')*)'\Z")
DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"\Z')


def scalar(text):
    if text in ("[]", "{}"):
        return [] if text == "[]" else {}
    m = SINGLE_QUOTED.match(text)
    if m:
        return m.group(1).replace("''", "'")
    m = DOUBLE_QUOTED.match(text)
    if m:
        return m.group(1)
    if DECIMAL.match(text):
        return int(text)
    if text in BOOLS:
        return BOOLS[text]
    if text in NULLS:
        return None
    if not PLAIN.match(text) or ": " in text or text.endswith(":"):
        raise Unsupported(text)
    return text


def _key(content):
    m = KEY.match(content)
    if not m or m.group(1) in BOOLS or m.group(1) in NULLS:
        raise Unsupported(content)
    return m.group(1), (m.group(2) or "").rstrip(" ")


def _is_item(content):
    return content == "-" or content.startswith("- ")


class _Parser:
    def __init__(self, lines):
        self.lines = lines  # [(indent, content)], blank and comment lines left out

    def block(self, i, indent):
        parse = self.sequence if _is_item(self.lines[i][1]) else self.mapping
        value, i = parse(i, indent)
        if i < len(self.lines) and self.lines[i][0] > indent:
            raise Unsupported("indentation")
        return value, i

    def nested(self, i, indent, same_indent_sequence):
        """The value on the lines after a 'key:' or '-' (None when there is none)."""
        if i < len(self.lines):
            ind, content = self.lines[i]
            if ind > indent or (same_indent_sequence and ind == indent and _is_item(content)):
                return self.block(i, ind)
        return None, i

    def mapping(self, i, indent):
        out = {}
        while i < len(self.lines) and self.lines[i][0] == indent and not _is_item(self.lines[i][1]):
            key, rest = _key(self.lines[i][1])
            if rest:
                out[key], i = scalar(rest), i + 1
            else:  # kubectl writes a sequence under a key at the key's own indentation
                out[key], i = self.nested(i + 1, indent, same_indent_sequence=True)
        return out, i

    def sequence(self, i, indent):
        out = []
        while i < len(self.lines) and self.lines[i][0] == indent and _is_item(self.lines[i][1]):
            rest = self.lines[i][1][1:]
            sub = rest.lstrip(" ")
            if not sub:
                value, i = self.nested(i + 1, indent, same_indent_sequence=False)
            elif KEY.match(sub) or _is_item(sub):  # '- name: x': a mapping (or sequence) starting on this line
                sub_indent = indent + 1 + len(rest) - len(sub)
                self.lines[i] = (sub_indent, sub)
                value, i = self.block(i, sub_indent)
            else:
                value, i = scalar(sub.rstrip(" ")), i + 1
            out.append(value)
        return out, i


def load(data):
    """The document in ``data`` (bytes) if it is a mapping inside the subset (None if it is empty), else raise
    Unsupported."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise Unsupported("not ASCII") from None
    lines = []
    for raw in text.split("\n"):
        if raw.strip(" ") == "" or raw.lstrip(" ").startswith("#"):
            if not raw.isprintable():
                raise Unsupported("control character")
            continue
        content = raw.lstrip(" ")
        if not raw.isprintable() or content.startswith(("---", "...", "%")) or " #" in content:
            raise Unsupported(raw)
        lines.append((len(raw) - len(content), content.rstrip(" ")))
    if not lines:
        return None  # empty, blank or comments only: PyYAML's safe_load gives None too
    if lines[0][0] != 0 or _is_item(lines[0][1]):
        raise Unsupported("not a mapping")
    doc, i = _Parser(lines).block(0, 0)
    if i != len(lines):
        raise Unsupported("indentation")
    return doc
