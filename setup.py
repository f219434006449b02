"""Build pyconv's Cython extensions: every ``pyconv/*.pyx`` becomes ``pyconv.<name>``.

Environment variables:
  PYCONV_NO_OPENMP=1     build sequential kernels even if the compiler supports OpenMP.
  PYCONV_PORTABLE=1      do not tune for the build machine's CPU (no ``-march=native``).
  PYCONV_DEBUG_CYTHON=1  bounds and wraparound checks on in every kernel (slow; for debugging).
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
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.errors import CompileError, LinkError
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
        except (CompileError, LinkError):
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


def _arch_args() -> list:
    if _flag("PYCONV_PORTABLE"):
        return []
    if _compiles("int main(void) { return 0; }", ["-march=native"]):
        return ["-march=native"]
    return []


openmp = _openmp_args()
compile_args = ["-O3", "-fno-math-errno", *_arch_args(), *openmp]
directives = {
    "language_level": "3",
    "boundscheck": _flag("PYCONV_DEBUG_CYTHON"),
    "wraparound": _flag("PYCONV_DEBUG_CYTHON"),
    "initializedcheck": _flag("PYCONV_DEBUG_CYTHON"),
    "cdivision": True,
    "nonecheck": False,
}

extensions = [
    Extension(
        f"pyconv.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[np.get_include(), "pyconv"],
        extra_compile_args=compile_args,
        extra_link_args=openmp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for pyx in sorted((HERE / "pyconv").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            compile_time_env={"PYCONV_OPENMP": bool(openmp)}))
