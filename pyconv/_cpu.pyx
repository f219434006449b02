# cython: language_level=3
"""What this build and this CPU offer: the instruction-set levels whose micro-kernels the build holds,
and whether the CPU (and its OS) can run each.  ``pyconv.isa`` chooses the level from these."""

cdef extern from "ukernels.h" nogil:
    const char *pyconv_isa_level(size_t i)
    int pyconv_isa_supported(const char *name)


def built():
    """The levels this build holds, best first."""
    cdef size_t i = 0
    levels = []
    while pyconv_isa_level(i) != NULL:
        levels.append(pyconv_isa_level(i).decode())
        i += 1
    return tuple(levels)


def supported(str name):
    """Whether this CPU can run level ``name`` (any name; unknown ones are not supported)."""
    return bool(pyconv_isa_supported(name.encode()))
