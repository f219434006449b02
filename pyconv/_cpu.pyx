# cython: language_level=3
"""What this build and this CPU offer: the instruction-set levels whose micro-kernels the build holds,
and whether the CPU (and its OS) can run each.  ``pyconv.isa`` chooses the level from these."""

cdef extern from "ukernels.h" nogil:
    const char *pyconv_isa_built()
    int pyconv_isa_supported(const char *name)


def built():
    """The levels this build holds, best first, space-separated."""
    return pyconv_isa_built().decode()


def supported(str name):
    """Whether this CPU can run level ``name`` (any name; unknown ones are not supported)."""
    return bool(pyconv_isa_supported(name.encode()))
