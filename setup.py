"""Build pyconv's Cython extensions: every ``pyconv/*.pyx`` becomes ``pyconv.<name>``, linked with the
micro-kernels of every instruction-set level the compiler's target has (``pyconv/ukernels/<family>/
<level>.c``, each level compiled with its own flags only, into a static library per level); the CPU
picks a level at import.  The default build runs on any CPU of its architecture.

Environment variables:
  PYCONV_NO_OPENMP=1     build sequential kernels even if the compiler supports OpenMP.
  PYCONV_NATIVE=1        also tune for the build machine's CPU (-march=native): the result may not run
                         on another CPU.
  PYCONV_DEBUG_CYTHON=1  bounds and wraparound checks on in every kernel (slow; for debugging).
  PYCONV_SANITIZE=address,undefined
                         build every extension and kernel library with these sanitizers (-O1 -g; for
                         testing: Python must then run with the sanitizer runtime preloaded, see
                         .ci/sanitize).  Build into a copy of the tree: objects left in build/ by another
                         build would be reused.
"""
import os
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.sysconfig import customize_compiler

HERE = Path(__file__).parent


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _compiles(source: str, extra_args: list) -> bool:
    """Whether a test program compiles and links with ``extra_args`` on this compiler."""
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(textwrap.dedent(source))
        try:
            objects = compiler.compile([str(src)], output_dir=tmp, extra_postargs=extra_args)
            compiler.link_executable(objects, str(Path(tmp, "probe")), extra_postargs=extra_args)
        except Exception:  # noqa: BLE001 - CompileError/LinkError, from whichever distutils the compiler uses
            return False
    return True


def _openmp_args() -> list:
    if _flag("PYCONV_NO_OPENMP"):
        print("pyconv: PYCONV_NO_OPENMP set, building sequential kernels", file=sys.stderr)
        return []
    probe = """
        #include <omp.h>
        int main(void) { int n = 0;
        #pragma omp parallel reduction(+:n)
        n += omp_get_num_threads() > 0;
        return n > 0 ? 0 : 1; }
    """
    if _compiles(probe, ["-fopenmp"]):
        return ["-fopenmp"]
    warnings.warn("pyconv: the compiler does not support OpenMP; building SEQUENTIAL kernels "
                  "(every call runs on one thread)")
    return []


def _native_args() -> list:
    if not _flag("PYCONV_NATIVE"):
        return []
    if _compiles("int main(void) { return 0; }", ["-march=native"]):
        return ["-march=native"]
    warnings.warn("pyconv: PYCONV_NATIVE set but the compiler rejects -march=native; ignored")
    return []


SANITIZERS = ("address", "undefined")


def _sanitize_args() -> list:
    """Compile and link flags of PYCONV_SANITIZE's sanitizers (a comma-separated subset of SANITIZERS):
    every finding aborts, frames are kept for readable reports."""
    wanted = [s.strip() for s in os.environ.get("PYCONV_SANITIZE", "").split(",") if s.strip()]
    if not wanted:
        return []
    unknown = sorted(set(wanted) - set(SANITIZERS))
    if unknown:
        sys.exit(f"pyconv: PYCONV_SANITIZE: unknown sanitizer {', '.join(unknown)} "
                 f"(choose from {', '.join(SANITIZERS)})")
    args = [f"-fsanitize={','.join(wanted)}", "-fno-omit-frame-pointer", "-g"]
    if "undefined" in wanted:
        # Python's own CFLAGS carry -fwrapv, under which signed overflow is defined and goes unchecked;
        # the kernels must not depend on it.
        args += ["-fno-sanitize-recover=undefined", "-fno-wrapv"]
    if not _compiles("int main(void) { return 0; }", args):
        sys.exit(f"pyconv: PYCONV_SANITIZE: the compiler rejects {' '.join(args)}")
    print(f"pyconv: PYCONV_SANITIZE: building with {' '.join(args)}", file=sys.stderr)
    return args


def _target_arch() -> str:
    """The compiler's target (not the build machine's: a cross compiler's target is what counts)."""
    for arch, macro in (("x86_64", "__x86_64__"), ("aarch64", "__aarch64__")):
        if _compiles(f"#ifndef {macro}\n#error other\n#endif\nint main(void) {{ return 0; }}", []):
            return arch
    return "other"


# Instruction-set levels per target, with the flags their files are compiled with.  x86-64's AVX-512
# level is Skylake-X's subset (F, VL, DQ, BW), which every AVX-512 CPU has; NEON is aarch64's baseline.
LEVELS = {
    "x86_64": {
        "avx512": ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw", "-mavx2", "-mfma"],
        "avx2": ["-mavx2", "-mfma"],
        "scalar": [],
    },
    "aarch64": {"neon": [], "scalar": []},
    "other": {"scalar": []},
}
# Families every level must have; gconv (the narrow-group row) is optional.
FAMILIES = ("igemm", "nchwconv", "dwconv", "winograd", "maxpool", "transpose", "eltwise", "resample")
UKERNELS = Path("pyconv", "ukernels")


def _levels(arch: str) -> dict:
    """The levels of ``arch`` whose files are all present, each with its sources and flags."""
    levels = {}
    for level, flags in LEVELS[arch].items():
        sources = [UKERNELS / family / f"{level}.c" for family in FAMILIES]
        if all((HERE / src).exists() for src in sources):
            if (HERE / UKERNELS / "gconv" / f"{level}.c").exists():
                sources.append(UKERNELS / "gconv" / f"{level}.c")
            levels[level] = ([str(src) for src in sources], flags)
    return levels


def _level_macros(levels: dict) -> list:
    macros = []
    for level, (sources, _) in levels.items():
        if level != "scalar":
            macros.append((f"PYCONV_HAVE_{level.upper()}", "1"))
        if any(Path(src).parent.name == "gconv" for src in sources):
            macros.append((f"PYCONV_HAVE_{level.upper()}_GCONV", "1"))
    return macros


openmp = _openmp_args()
sanitize = _sanitize_args()
# A sanitized build trades speed for findings that point at source lines: -O1 keeps them exact.
base_args = ["-O1" if sanitize else "-O3", "-fno-math-errno", *_native_args(), *sanitize]
compile_args = [*base_args, *openmp]
levels = _levels(_target_arch())
level_macros = _level_macros(levels)
headers = [str(p.relative_to(HERE)) for p in sorted((HERE / UKERNELS).rglob("*.h"))]
# What a level's presence and the dispatcher's table follow from: every kernel file (a new gconv/<level>.c
# changes the dispatcher's macros, and any changed library must relink the extensions).
kernel_files = headers + [str(p.relative_to(HERE)) for p in sorted((HERE / UKERNELS).rglob("*.c"))]
cython_interfaces = ["pyconv/_ukernels.pxd", "pyconv/_level.pxi"]
# One static library per level, compiled with that level's flags only; the dispatcher and the per-thread
# scratch (baseline flags) first, so that the linker resolves the levels' symbols it names.
libraries = [("pyconv_ukernels_dispatch", {
    "sources": [str(UKERNELS / "dispatch.c"), str(UKERNELS / "scratch.c")], "cflags": base_args, "macros": level_macros,
    "obj_deps": {"": kernel_files},
})] + [(f"pyconv_ukernels_{level}", {
    "sources": sources, "cflags": [*base_args, *flags], "obj_deps": {"": headers},
}) for level, (sources, flags) in levels.items()]
directives = {
    "language_level": "3",
    "boundscheck": _flag("PYCONV_DEBUG_CYTHON"),
    "wraparound": _flag("PYCONV_DEBUG_CYTHON"),
    "initializedcheck": _flag("PYCONV_DEBUG_CYTHON"),
    "cdivision": True,
    "nonecheck": False,
}

# Per extension flags on top of compile_args: _resample reproduces Pillow's resampling weights bit for bit,
# which a multiply-add fused by the compiler (e.g. under -march=native) would round differently.
extension_args = {"_resample": ["-ffp-contract=off"]}

extensions = [
    Extension(
        f"pyconv.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[np.get_include(), "pyconv", str(UKERNELS)],
        extra_compile_args=[*compile_args, *extension_args.get(pyx.stem, [])],
        extra_link_args=[*openmp, *sanitize],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), *level_macros],
        depends=kernel_files + cython_interfaces,
    )
    for pyx in sorted((HERE / "pyconv").glob("*.pyx"))
]



class BuildExtWithKernels(build_ext):
    """build_ext that builds the micro-kernel libraries first, also when run on its own (--inplace)."""

    def run(self):
        self.run_command("build_clib")
        super().run()


setup(libraries=libraries, cmdclass={"build_ext": BuildExtWithKernels}, ext_modules=cythonize(extensions, compiler_directives=directives,
                            compile_time_env={"PYCONV_OPENMP": bool(openmp)}))
