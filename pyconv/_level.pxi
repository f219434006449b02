# The level's micro-kernels, for a driver module: its own pointer to the dispatch table in use, which
# pyconv.isa sets at import and on every switch (included by each driver module; every extension
# links its own copy of the kernel libraries).
from .isa import _register as _register_isa

cdef const pyconv_ukernels *uk = NULL


def _use_isa(str name):
    """Run the micro-kernels of level ``name`` from the next call on (``pyconv.isa`` validates it)."""
    global uk
    cdef const pyconv_ukernels *table = pyconv_ukernels_for(name.encode())
    if table == NULL:
        raise ValueError(f"this build has no {name!r} micro-kernels")
    uk = table


_register_isa(_use_isa)
