"""Builds pyconv's C parts from setup.py's OWN definitions, for any compiler (native or cross): the
micro-kernel test driver (tests/ukernels/check_ukernels.c) and, for a cross target, the extensions.

setup.py is executed with setuptools.setup() intercepted: its compiler probes honour $CC, so a cross
compiler's target decides the levels, and the libraries (one per level, with that level's cflags and
macros) and ext_modules come out exactly as a real build would use them.

  python .ci/pyconv_build.py check OUT [--cc CC] [--ar AR] [--ldflag F ...] [--archives-from DIR]
  python .ci/pyconv_build.py extensions --sysroot DIR --numpy-include DIR [--cc CC] [--ar AR]
Used by tests/test_ukernels.py (native), .ci/sanitize (native, sanitized) and .ci/aarch64 (cross).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import glob
import hashlib
import os
import runpy
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UKERNELS = Path("pyconv", "ukernels")
JOBS = os.cpu_count() or 2


@contextlib.contextmanager
def _in_dir(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def definitions(root: Path = ROOT, cc: str | None = None, cythonize: bool = False) -> dict:
    """setup()'s keyword arguments as setup.py computes them for compiler ``cc`` (default $CC).
    Without ``cythonize`` the Cython step is skipped (ext_modules then name .pyx sources)."""
    import setuptools
    import Cython.Build

    captured: dict = {}
    saved = (setuptools.setup, Cython.Build.cythonize, os.environ.get("CC"), sys.argv, list(sys.path))
    setuptools.setup = lambda **kw: captured.update(kw)
    if not cythonize:
        Cython.Build.cythonize = lambda exts, **kw: exts
    if cc:
        os.environ["CC"] = cc
    sys.argv = ["setup.py", "--name"]
    sys.path.insert(0, str(root))
    try:
        with _in_dir(root), contextlib.redirect_stdout(sys.stderr):
            runpy.run_path(str(root / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup, Cython.Build.cythonize, old_cc, sys.argv, sys.path[:] = saved
        if old_cc is None:
            os.environ.pop("CC", None)
        else:
            os.environ["CC"] = old_cc
    return captured


def _macro_flags(macros) -> list:
    return [f"-D{name}" if value is None else f"-D{name}={value}" for name, value in macros]


def _run(cmd: list) -> float:
    start = time.perf_counter()
    # The compiler does not run under a sanitizer runtime the tests preload (see .ci/sanitize).
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{shlex.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return time.perf_counter() - start


def interpreter_cflags(tv: dict | None = None) -> list:
    """The flags distutils puts before every C compile for an interpreter (its sysconfig CFLAGS and
    CCSHARED, then $CFLAGS): ``tv`` a target's build_time_vars, or None for this interpreter."""
    if tv is None:
        import sysconfig
        tv = sysconfig.get_config_vars()
    return shlex.split(tv.get("CFLAGS") or "") + shlex.split(tv.get("CCSHARED") or "") + \
        shlex.split(os.environ.get("CFLAGS", ""))


def build_libraries(libraries: list, build: Path, cc: str, ar: str, base: list, root: Path = ROOT) -> list:
    """One static library per entry of setup()'s ``libraries``, each source compiled as build_clib
    does (the interpreter's flags ``base``, then that library's macros and cflags); returns the
    archives in setup.py's order (dispatch first)."""
    # Objects are named by a hash of their command, source and every header, so that a build
    # directory kept between runs recompiles only what changed (AVX-512 depthwise alone takes ~17 s).
    headers = b"".join(h.read_bytes() for h in sorted((root / UKERNELS).rglob("*.h")))
    jobs, archives = [], []
    for name, info in libraries:
        objs = []
        for src in info["sources"]:
            cmd = [cc, *base, *_macro_flags(info.get("macros", [])), "-I", str(root / UKERNELS), "-c",
                   str(root / src), *info.get("cflags", [])]
            key = hashlib.sha256(shlex.join(cmd).encode() + (root / src).read_bytes() + headers).hexdigest()
            obj = build / "obj" / f"{Path(src).parent.name}-{Path(src).stem}-{key[:16]}.o"
            obj.parent.mkdir(parents=True, exist_ok=True)
            objs.append(obj)
            if not obj.exists():
                jobs.append((cmd, obj))
        archives.append((build / f"lib{name}.a", objs))

    def compile_one(job):
        cmd, obj = job
        tmp = obj.with_suffix(f".{os.getpid()}.tmp")
        _run([*cmd, "-o", str(tmp)])
        tmp.replace(obj)

    with cf.ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(compile_one, jobs))
    for archive, objs in archives:
        archive.unlink(missing_ok=True)
        _run([ar, "rcs", str(archive), *map(str, objs)])
    return [archive for archive, _ in archives]


def build_check(out: Path, cc: str | None = None, ar: str | None = None, ldflags=(), tv: dict | None = None,
                root: Path = ROOT, archives_from: Path | None = None) -> list:
    """Compiles the micro-kernel test driver against every level's library, with the flags of
    interpreter ``tv`` (None: this one); returns setup.py's libraries for the compiler's target.
    ``archives_from``: link the libraries setup.py's build_clib left there (lib<name>.a, built with
    the same flags by the same environment) instead of compiling them again."""
    cc = cc or os.environ.get("CC", "gcc")
    ar = ar or _sibling_tool(cc, "ar")
    base = interpreter_cflags(tv)
    libraries = definitions(root, cc)["libraries"]
    if archives_from is not None:
        archives = [archives_from / f"lib{name}.a" for name, _ in libraries]
        missing = [str(a) for a in archives if not a.exists()]
        if missing:
            raise FileNotFoundError(f"no kernel library {', '.join(missing)}")
    else:
        archives = build_libraries(libraries, out.parent / (out.name + ".build"), cc, ar, base, root)
    dispatch = dict(libraries)["pyconv_ukernels_dispatch"]   # baseline flags and the level macros
    _run([cc, *base, *_macro_flags(dispatch["macros"]), "-I", str(root / UKERNELS),
          str(root / "tests" / "ukernels" / "check_ukernels.c"), *dispatch["cflags"], *map(str, archives),
          *ldflags, "-lm", "-o", str(out)])
    return [name for name, _ in libraries]


def _sibling_tool(cc: str, tool: str) -> str:
    """aarch64-linux-gnu-gcc -> aarch64-linux-gnu-ar; gcc -> ar."""
    head, sep, _ = Path(cc).name.rpartition("-")
    return f"{head}{sep}{tool}" if sep else tool


def target_vars(sysroot: Path) -> dict:
    """The build_time_vars of the Python installed in ``sysroot``."""
    data = sorted(glob.glob(f"{sysroot}/usr/lib/python3*/_sysconfigdata__linux_*.py"))[0]
    return runpy.run_path(data)["build_time_vars"]


def build_extensions(sysroot: Path, numpy_include: Path, cc: str, ar: str, root: Path = ROOT) -> None:
    """Cross-compiles every extension in place (pyconv/*.so) with the target interpreter's sysconfig
    (from the sysroot), setup.py's compile and link arguments and macros, and its libraries."""
    tv = target_vars(sysroot)
    inc = tv["INCLUDEPY"]
    py_includes = [f"-I{sysroot}{inc}", f"-I{sysroot}{os.path.dirname(inc)}"]
    setup_kw = definitions(root, cc, cythonize=True)
    build = root / "build" / "cross"
    t = time.perf_counter()
    archives = build_libraries(setup_kw["libraries"], build, cc, ar, interpreter_cflags(tv), root)
    print(f"  kernel libraries ({', '.join(a.stem[3:] for a in archives)}): {time.perf_counter() - t:.1f}s")
    base = interpreter_cflags(tv)
    ldshared = [cc] + shlex.split(tv["LDSHARED"])[1:]
    compiles, links = [], []
    for ext in setup_kw["ext_modules"]:
        # A host numpy's include dirs are replaced by the target wheel's.
        incs = [f"-I{d}" for d in ext.include_dirs if "numpy" not in d] + [f"-I{numpy_include}"] + py_includes
        objs = []
        for src in ext.sources:
            obj = build / "ext" / (Path(src).stem + ".o")
            obj.parent.mkdir(parents=True, exist_ok=True)
            objs.append(str(obj))
            compiles.append([cc, *base, *_macro_flags(ext.define_macros), *incs, "-c", src, "-o", str(obj),
                             *ext.extra_compile_args])
        links.append([*ldshared, *objs, *map(str, archives), *ext.extra_link_args, "-o",
                      ext.name.replace(".", os.sep) + tv["EXT_SUFFIX"]])
    with _in_dir(root), cf.ThreadPoolExecutor(JOBS) as pool:
        t = time.perf_counter()
        list(pool.map(_run, compiles))
        print(f"  {len(compiles)} extension sources: {time.perf_counter() - t:.1f}s")
        list(pool.map(_run, links))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    check = sub.add_parser("check", help="build the micro-kernel test driver")
    check.add_argument("out", type=Path)
    check.add_argument("--ldflag", action="append", default=[])
    check.add_argument("--sysroot", type=Path, help="take the compile flags from this sysroot's Python")
    check.add_argument("--archives-from", type=Path, help="link the kernel libraries found here (setup.py's "
                       "build_clib output) instead of compiling them")
    ext = sub.add_parser("extensions", help="cross-compile the extensions in place")
    ext.add_argument("--sysroot", type=Path, required=True)
    ext.add_argument("--numpy-include", type=Path, required=True)
    for p in (check, ext):
        p.add_argument("--cc", default=os.environ.get("CC", "gcc"))
        p.add_argument("--ar")
    args = parser.parse_args()
    ar = args.ar or _sibling_tool(args.cc, "ar")
    if args.what == "check":
        tv = target_vars(args.sysroot) if args.sysroot else None
        levels = build_check(args.out, args.cc, ar, args.ldflag, tv, archives_from=args.archives_from)
        print(f"{args.out}: {', '.join(levels)}")
    else:
        build_extensions(args.sysroot, args.numpy_include, args.cc, ar)


if __name__ == "__main__":
    main()
