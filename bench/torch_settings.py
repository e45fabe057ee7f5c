"""What the bench's PyTorch process runs with, for the result files (bench/machine.ts records the rest).

about():   torch's build (version, torch.__config__.show(), parallel_info(), oneDNN), the BLAS libraries this
           process actually mapped and, for OpenBLAS, the kernels it picked for this CPU.
threads(): the thread settings a measurement ran under, as this process sees them: torch's intra- and
           inter-op threads, OpenBLAS's own thread count, and the environment variables that set them.

Each torch_*.py script adds threads() to its JSON line, so every row of a table says how PyTorch ran.
"""
import ctypes
import os
import re

import torch

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")


def mapped_blas():
    """Real paths of the BLAS/LAPACK libraries mapped into this process (after torch is imported)."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            name = os.path.basename(path).lower()
            if path.startswith("/") and re.search(r"blas|mkl|blis|lapack", name):
                found.add(os.path.realpath(path))
    return sorted(found)


def _openblas():
    """The mapped OpenBLAS's handle, or None (Debian's torch loads it as libblas.so.3)."""
    for path in mapped_blas():
        if "openblas" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib
            except (OSError, AttributeError):
                pass
    return None


def about():
    """torch's version and build, its BLAS and, for OpenBLAS, its build line and the core type it chose."""
    openblas = _openblas()
    return {
        "version": torch.__version__,
        "blas": mapped_blas(),
        "config": torch.__config__.show(),
        "parallelInfo": torch.__config__.parallel_info(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openblas": openblas
        and {
            "config": openblas.openblas_get_config().decode(),
            "coreName": openblas.openblas_get_corename().decode(),
        },
    }


def threads():
    """The thread settings in force now (call after torch.set_num_threads)."""
    openblas = _openblas()
    return {
        "torch": torch.get_num_threads(),
        "interop": torch.get_num_interop_threads(),
        "blas": openblas.openblas_get_num_threads() if openblas else None,
        "env": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }
