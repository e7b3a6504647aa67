#!/usr/bin/env python3
"""Build dist/kubectl-vm_storage: one zipapp (after a ``#!/bin/sh`` launcher) with every dependency inside.

Why a zipapp of pure Python: krew ships one archive per platform selector, and a pure-Python file serves
linux and darwin on amd64 and arm64 alike. The dependencies are resolved for the oldest Python we support
(3.9, so environment markers pick 3.9-compatible releases that also run on newer Pythons), then every compiled
extension is removed: PyYAML falls back to its pure-Python loader, charset_normalizer has pure-Python twins
of its mypyc modules. ``kubernetes<36`` keeps aiohttp (36+) and pydantic-core (37+) out. PySocks is bundled
too (urllib3's socks5 proxy support needs it), because the launcher keeps site-packages off sys.path.

Why a shell launcher in front of the archive (zip readers find the archive from its end, so a prefix is
allowed - that is how a zipapp carries its shebang at all): it runs ``python3 -E -s -S``. Every dependency is
inside, so the host's site-packages have nothing to offer but start-up cost - ``site`` runs every ``.pth``
file there (editable-install finders, CA injectors importing certifi: 30-50 ms on a developer machine) - and
the user's PYTHONPATH/PYTHONHOME could shadow the bundled packages. ``-E -s`` is ``-I`` (isolated) without the
``-P`` that 3.11 adds to it, which would keep the unpacked copy's directory off sys.path; ``-S``: no site module.
Once the archive is unpacked (see MAIN), the launcher starts that copy's ``__main__.py`` itself: opening the
archive first would make Python read its whole central directory (~1 900 entries, ~12 ms) on every run.
``KUBECTL_VM_STORAGE_PYTHON`` names another interpreter than ``python3``.

Usage: python3 scripts/build_zipapp.py [--out dist/kubectl-vm_storage] [--python-version 3.9]
Runs on Python >= 3.9 with pip available.
"""
import argparse
import configparser
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "kubectl_vmmig"
# The cache path is MAIN's _cached_site rule again, in sh: if the two ever differ, the launcher just takes the
# slower way through the archive, whose __main__ finds (or makes) the unpacked copy.
LAUNCHER = """#!/bin/sh
# kubectl-vm_storage: a Python zipapp; the archive follows this launcher (scripts/build_zipapp.py)
c=${VMSTORAGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-vm-storage}/zipapp-@BUILD_ID@
if [ "$VMSTORAGE_ZIPAPP_CACHE" != 0 ] && [ -f "$c/.complete" ]; then
  VMSTORAGE_ARGV0=$0; export VMSTORAGE_ARGV0
  exec "${KUBECTL_VM_STORAGE_PYTHON:-python3}" -E -s -S "$c/__main__.py" "$@"
fi
exec "${KUBECTL_VM_STORAGE_PYTHON:-python3}" -E -s -S "$0" "$@"
"""
ZIPAPP_EXTRA = ["PySocks>=1.7"]  # urllib3.contrib.socks: the socks5 proxy-url (site-packages are off the path)
MAIN = """# kubectl-vm_storage zipapp entry point (built by scripts/build_zipapp.py)
import os
import sys

BUILD_ID = "@BUILD_ID@"


def _cached_site(archive):
    # Python compiles every module imported from a zip on every run (no bytecode cache in zips), which
    # triples start-up and every TAB pays it. So unpack once into a private cache keyed by the build, and
    # let Python keep bytecode there. Any problem (read-only home, ...) means: run from the zip.
    if os.environ.get("VMSTORAGE_ZIPAPP_CACHE", "1") == "0" or not os.path.isfile(archive):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.environ.get("VMSTORAGE_CACHE_DIR") or os.path.join(base, "kubectl-vm-storage")
    site = os.path.join(root, "zipapp-" + BUILD_ID)
    if os.path.isfile(os.path.join(site, ".complete")):
        return site
    try:
        import shutil
        import tempfile
        import zipfile

        os.makedirs(root, mode=0o700, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="zipapp-" + BUILD_ID + ".tmp-", dir=root)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        open(os.path.join(tmp, ".complete"), "w").close()
        try:
            os.rename(tmp, site)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
        return site if os.path.isfile(os.path.join(site, ".complete")) else None
    except Exception:
        return None


def _main():
    if sys.version_info < (3, 9):
        sys.stderr.write("error: kubectl vm-storage needs Python >= 3.9 (found %s)\\n" % sys.version.split()[0])
        sys.exit(1)
    argv0 = os.environ.pop("VMSTORAGE_ARGV0", None)
    if argv0 is not None:  # the launcher started the unpacked copy: sys.path[0] is its directory
        sys.argv[0] = argv0  # the plugin's own path (kubectl-vm_storage), for the program name
        sys.dont_write_bytecode = False
    else:
        site = _cached_site(os.path.abspath(sys.path[0]))
        if site:
            sys.path[0] = site
            sys.dont_write_bytecode = False  # our private cache: keep bytecode even under PYTHONDONTWRITEBYTECODE
    from kubectl_vmmig.launch import run

    run()


if __name__ == "__main__":
    _main()
"""
# Compiled extensions whose package works without them; anything else compiled fails the build.
OPTIONAL_EXTENSIONS = ("yaml/_yaml.", "charset_normalizer/md.", "charset_normalizer/cd.",
                       "charset_normalizer/md__mypyc.")
DROP_DIRS = {"__pycache__", "bin", "_yaml"}  # _yaml: the C binding's shim package, useless without the .so
# 'kubernetes/test', 'kubernetes/e2e_test' ... test suites shipped inside wheels: not needed at run time
DROP_SUBPATHS = ("kubernetes/test/", "kubernetes/e2e_test/", "websocket/tests/",
                 "oauthlib/tests/", "dateutil/test/", "tabulate/tests/")
ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same archive


def requirements():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]


def pip_install(target, reqs, python_version):
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--no-warn-conflicts",  # --target: conflicts with the build environment do not concern the archive
           "--target", target, "--only-binary=:all:", "--python-version", python_version] + reqs
    subprocess.check_call(cmd)


def strip_compiled(site):
    """Delete compiled extensions; refuse to build if one is not known to have a pure-Python fallback."""
    removed, fatal = [], []
    for dirpath, _dirs, files in os.walk(site):
        for f in files:
            if f.endswith((".so", ".pyd", ".dylib")):
                rel = os.path.relpath(os.path.join(dirpath, f), site).replace(os.sep, "/")
                os.unlink(os.path.join(dirpath, f))
                (removed if rel.startswith(OPTIONAL_EXTENSIONS) or "/" not in rel and "__mypyc" in rel
                 else fatal).append(rel)
    if fatal:
        raise SystemExit("error: compiled modules without a pure-Python fallback: " + ", ".join(fatal))
    return removed


def copy_package(site):
    src = os.path.join(ROOT, PACKAGE)
    shutil.copytree(src, os.path.join(site, PACKAGE), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _keep(rel):
    parts = rel.split("/")
    if any(p in DROP_DIRS for p in parts[:-1]) or rel.endswith((".pyc", ".pyi")):
        return False
    return not rel.startswith(DROP_SUBPATHS)


def build_id(entries):
    """Content hash of everything bundled: the cache key of the unpacked copy (see MAIN)."""
    import hashlib

    h = hashlib.sha256((MAIN + LAUNCHER).encode())  # the unpacked copy holds __main__.py too
    for rel, full in entries:
        h.update(rel.encode() + b"\0")
        with open(full, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


def write_zipapp(site, out):
    entries = []
    for dirpath, dirs, files in os.walk(site):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, site).replace(os.sep, "/")
            if _keep(rel):
                entries.append((rel, full))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    bid = build_id(entries)
    with open(tmp, "wb") as fh:
        fh.write(LAUNCHER.replace("@BUILD_ID@", bid).encode())
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            main_info = zipfile.ZipInfo("__main__.py", ZIP_DATE)
            main_info.external_attr = 0o644 << 16
            zf.writestr(main_info, MAIN.replace("@BUILD_ID@", bid))
            for rel, full in entries:
                info = zipfile.ZipInfo(rel, ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with open(full, "rb") as src:
                    zf.writestr(info, src.read(), compresslevel=9)
    os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, out)
    return len(entries) + 1


def verify(out):
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    if compiled:
        raise SystemExit(f"error: compiled files left in {out}: {compiled}")
    for must in ("__main__.py", f"{PACKAGE}/launch.py", f"{PACKAGE}/help_cache.py", f"{PACKAGE}/cli.py", "click/__init__.py", "urllib3/__init__.py",
                 "yaml/__init__.py", "kubernetes/config/exec_provider.py", "socks.py"):
        if must not in names:
            raise SystemExit(f"error: {must} missing from {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "dist", "kubectl-vm_storage"))
    ap.add_argument("--python-version", default="3.9", help="resolve dependencies for this Python (the oldest supported)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmstorage-zipapp-") as tmp:
        site = os.path.join(tmp, "site")
        pip_install(site, requirements() + ZIPAPP_EXTRA, args.python_version)
        removed = strip_compiled(site)
        copy_package(site)
        count = write_zipapp(site, args.out)
    verify(args.out)
    size = os.path.getsize(args.out) / 1e6
    print(f"built {args.out}: {count} files, {size:.1f} MB; stripped compiled: {', '.join(removed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
