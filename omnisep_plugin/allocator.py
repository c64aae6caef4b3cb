"""Keep freed memory in the process instead of handing it back to the kernel (glibc).

PyTorch's CPU tensors come from ``malloc``. glibc serves blocks above its mmap threshold
(at most 32 MiB) with fresh ``mmap`` pages and returns freed heap tops to the kernel, so a
training step that allocates and frees the same activations every step page-faults them
in again each time: on 2 cores, 0.44 M page faults and about 1 s of kernel time per step
of the paper-size model at batch 8 (``python benchmarks/train_throughput.py --malloc
default``, which prints faults per step; docs/benchmarks.md). With the heap kept (no mmap'd
blocks, no trimming), later steps reuse the pages: no faults, at the price of holding the
peak working set (about 20 % more peak RSS).
"""
import ctypes
import ctypes.util
import logging
import platform

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_INT_MAX = 2**31 - 1


def keep_freed_memory(top_pad_mib: int = 256) -> bool:
    """Tell glibc to serve every block from the heap and never trim it (``mallopt``).

    Affects the allocations made after the call, in this process and the processes it
    forks (DataLoader workers). Returns ``False``, changing nothing, where the C library is
    not glibc (macOS, musl, Windows).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(libc.mallopt(param, value) == 1 for param, value in (
            (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX), (_M_TOP_PAD, top_pad_mib << 20)))
    except (OSError, AttributeError) as err:
        logging.debug("mallopt unavailable: %s", err)
        return False
    return ok
