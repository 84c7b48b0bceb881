"""glassnet's intra-op threads: one small pool that splits a kernel's work over the batch.

NumPy runs every elementwise pass, copy and reduction on one thread; only its BLAS (the GEMMs)
uses more. PyTorch runs all of them on its intra-op threads. ``set_num_threads(n)`` gives glassnet
the same model: the heavy kernels (convolution, pooling, batch norm, ReLU, large GEMMs) cut their
work into independent pieces, usually batch chunks, and ``n`` threads take the pieces one at a time
(dynamic scheduling: a thread that wakes late simply takes fewer). NumPy releases the GIL inside
each piece, so the pieces really run at the same time.

Only one pool of threads may be busy at a time: BLAS's idle threads spin for about 0.1 s after
every multi-threaded GEMM, and a second pool running beside them makes both wait (measured here:
the BatchNorm CNN 1.36x slower than with BLAS pinned to one thread). So glassnet hands the cores to
one pool or the other:

- while its parallel kernels run, and for 0.1 s after the last one (the time BLAS threads would
  spin), BLAS runs on one thread; GEMMs called through ``matmul`` are then cut in blocks, one per
  thread, when they are large;
- otherwise (a network of Linear layers only) ``matmul`` gives the GEMM to BLAS on ``n`` threads,
  whose spinning threads take it up within a microsecond, where a sleeping Python thread needs
  30-60 us to wake (on small GEMMs BLAS's threads are 1.5-2x faster than glassnet's blocks).

Until ``set_num_threads`` is called (or ``GLASSNET_NUM_THREADS`` is set when glassnet is imported)
glassnet leaves the BLAS as it found it and runs its kernels on the calling thread.

Results do not depend on the number of threads: each piece is computed the same way whichever
thread takes it, and partial sums are added in the order of the pieces.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import sys
import threading
import time
import warnings

import numpy as np

__all__ = ["get_num_threads", "set_num_threads"]

_threads = 1  # glassnet's intra-op threads (the calling thread included)
_configured = False  # set_num_threads was called (glassnet then owns the cores' split)
_workers: list[queue.SimpleQueue] = []  # one job queue per helper thread
_busy = threading.Lock()  # held while a parallel_for runs: nested or concurrent calls run serially
_blas_setters: list | None = None  # OpenBLAS's set_num_threads functions, found on first use
_blas_now = 0  # the thread count last given to BLAS (0: not set by glassnet)
_HOT_SECONDS = 0.1  # how long BLAS threads spin after a GEMM, and glassnet's pool counts as busy after a job
_pool_until = 0.0  # time.perf_counter() until which glassnet's pool counts as busy


def get_num_threads() -> int:
    """The number of threads glassnet's kernels use (1 until ``set_num_threads`` says otherwise)."""
    return _threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for glassnet's kernels and NumPy's BLAS (PyTorch's ``torch.set_num_threads``).

    It applies to the whole process: call it once, early. NumPy's BLAS is given ``n`` threads for
    the GEMMs glassnet runs on the calling thread, and one thread inside glassnet's parallel loops.

    Example:
        >>> import glassnet as gn
        >>> gn.set_num_threads(2); gn.get_num_threads()
        2
        >>> gn.set_num_threads(1)
    """
    global _threads, _pool_until, _configured
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _pool_until = 0.0
    if not _set_blas_threads(n):
        if n > 1:
            warnings.warn(
                f"set_num_threads({n}): glassnet's threads need NumPy's OpenBLAS (to run it on one "
                "thread inside glassnet's parallel loops), and none was found; glassnet's kernels stay "
                "on one thread",
                RuntimeWarning,
                stacklevel=2,
            )
        n = 1
    while len(_workers) < n - 1:
        jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(jobs,), name=f"glassnet-{len(_workers) + 1}", daemon=True).start()
        _workers.append(jobs)
    _threads = n
    _configured = True


def claim_cores() -> None:
    """A pool of glassnet's runs now (parallel_for's threads, or the compiled GEMM's): BLAS goes to one
    thread, and glassnet's pools count as busy for _HOT_SECONDS."""
    global _pool_until
    if _blas_now != 1:
        _set_blas_threads(1)
    _pool_until = time.perf_counter() + _HOT_SECONDS


def gemm_threads() -> int:
    """Threads for glassnet's compiled GEMM (Linear in inference): 0 until ``set_num_threads`` is called.

    Until then NumPy's BLAS keeps its own thread count, and the products stay with it.
    """
    return _threads if _configured else 0


class _Job:
    """One parallel_for: the pieces still to take, the threads still inside it, the first error."""

    __slots__ = ("fn", "count", "next", "lock", "active", "closed", "finished", "error")

    def __init__(self, fn, count: int) -> None:
        self.fn, self.count = fn, count
        self.next = itertools.count()  # next() on it is atomic under the GIL
        self.lock = threading.Lock()
        self.active = 0  # helper threads working on this job
        self.closed = False  # the caller has taken its last piece: late helpers stay out
        self.finished = threading.Lock()
        self.finished.acquire()
        self.error: BaseException | None = None

    def work(self) -> None:
        fn, count, take = self.fn, self.count, self.next
        try:
            i = next(take)
            while i < count and self.error is None:
                fn(i)
                i = next(take)
        except BaseException as error:  # re-raised by the caller of parallel_for
            self.error = self.error or error


def _serve(jobs: queue.SimpleQueue) -> None:
    """A helper thread: join each job posted to it unless the caller has already finished it."""
    while True:
        job = jobs.get()
        with job.lock:
            if job.closed:
                continue
            job.active += 1
        job.work()
        with job.lock:
            job.active -= 1
            if job.closed and job.active == 0:
                job.finished.release()


def parallel_for(count: int, fn) -> None:
    """Call ``fn(i)`` for every i in range(count), spread over glassnet's threads.

    ``fn`` must be safe to run at the same time for different i (write disjoint outputs) and should
    spend its time in NumPy calls, which release the GIL. BLAS runs on one thread meanwhile (and
    for _HOT_SECONDS after). Runs serially with one thread, with a single piece, or inside another
    parallel_for.
    """
    global _pool_until
    if _threads == 1 or count < 2 or not _busy.acquire(blocking=False):
        for i in range(count):
            fn(i)
        return
    try:
        claim_cores()
        job = _Job(fn, count)
        for jobs in _workers[: min(_threads, count) - 1]:
            jobs.put(job)
        job.work()
        with job.lock:
            job.closed = True
            wait = job.active > 0
        if wait:
            job.finished.acquire()
    finally:
        _pool_until = time.perf_counter() + _HOT_SECONDS
        _busy.release()
    if job.error is not None:
        raise job.error


_GEMM_SPLIT_FLOPS = 24e6  # below this a GEMM runs on the calling thread (a helper needs 30-60 us to wake)


def matmul(a, b):
    """a (M, K) @ b (K, N) for 2-D arrays, cut into one block of rows (or columns) per thread when large.

    With one thread it is ``a @ b``; when glassnet's pool has been idle for _HOT_SECONDS, ``a @ b``
    on BLAS's threads; below _GEMM_SPLIT_FLOPS, ``a @ b`` on the calling thread. The blocks are whole
    rows or columns of the product, each computed by one GEMM as a whole, so the result is the same.
    """
    if _threads == 1:
        return a @ b
    if time.perf_counter() >= _pool_until:
        if _blas_now != _threads:
            _set_blas_threads(_threads)
        return a @ b
    M, N = a.shape[0], b.shape[1]
    if 2.0 * M * N * a.shape[1] < _GEMM_SPLIT_FLOPS:
        return a @ b
    out = np.empty((M, N), dtype=np.result_type(a, b))
    if M >= N:
        blocks = pieces(M, _threads, 8)

        def block(i):
            start, stop = blocks[i]
            np.matmul(a[start:stop], b, out=out[start:stop])
    else:
        blocks = pieces(N, _threads, 8)

        def block(i):
            start, stop = blocks[i]
            np.matmul(a, b[:, start:stop], out=out[:, start:stop])

    parallel_for(len(blocks), block)
    return out


def sum_in_order(parts):
    """parts[0] + parts[1] + ... added left to right into a copy of the first.

    The pieces' partial sums (weight gradients, channel sums) go through it, so that the total has
    the same bits whichever thread computed each part.
    """
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


_GRAIN_BYTES = 1 << 19  # a piece smaller than this is not worth a helper thread's wake-up


def parts(nbytes: int, grain: int = _GRAIN_BYTES) -> int:
    """Pieces to cut a pass over ``nbytes`` into: up to 4 per thread, none under ``grain``; 1 with one thread."""
    if _threads == 1:
        return 1
    return max(1, min(4 * _threads, nbytes // grain))


def parallel_rows(rows: int, nbytes: int, fn) -> None:
    """Call ``fn(start, stop)`` on blocks of range(rows) covering it, in parallel when ``nbytes`` is large.

    For passes whose result does not depend on how the rows are cut (elementwise work, maxima).
    """
    count = parts(nbytes)
    if count == 1 or rows < 2:
        fn(0, rows)
        return
    blocks = pieces(rows, count)
    parallel_for(len(blocks), lambda i: fn(*blocks[i]))


def pieces(total: int, count: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Cut range(total) into at most ``count`` nearly equal (start, stop) pieces starting on multiples of ``multiple``.

    Example:
        >>> pieces(10, 3)
        [(0, 3), (3, 6), (6, 10)]
    """
    count = max(1, min(count, -(-total // multiple)))
    bounds = [min(total, -(-(total * k // count) // multiple) * multiple) for k in range(count + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


# NumPy's wheels bundle OpenBLAS (under a prefixed name); Linux lists the loaded libraries in
# /proc/self/maps. Its setter is a plain store (about 0.5 us), cheap enough for every parallel_for.
_OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _set_blas_threads(n: int) -> bool:
    """Give the OpenBLAS libraries of this process ``n`` threads; False when there is none."""
    global _blas_setters, _blas_now
    if _blas_setters is None:
        _blas_setters = _find_openblas_setters()
    for setter in _blas_setters:
        setter(n)
    _blas_now = n
    return bool(_blas_setters)


def _find_openblas_setters() -> list:
    if not sys.platform.startswith("linux"):
        return []
    import numpy  # noqa: F401  (its BLAS must be loaded to be found)

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    setters = []
    for path in sorted(p for p in paths if p.startswith("/") and ".so" in p):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                setters.append(setter)
                break
    return setters


def _after_fork_in_child() -> None:
    """A forked child has none of the helper threads: its kernels run on its one thread."""
    global _threads, _busy
    _workers.clear()
    _threads = 1
    _busy = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _from_environment() -> None:
    value = os.environ.get("GLASSNET_NUM_THREADS")
    if not value:
        return
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"GLASSNET_NUM_THREADS must be a positive integer, got {value!r}") from None
    set_num_threads(n)


_from_environment()
