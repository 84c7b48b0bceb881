"""Profile: where glassnet's time and memory go in the training and inference steps of bench_train.py.

Run from the repository root:

    .venv/bin/python benchmarks/profile_train.py [--only mlp|lenet|bncnn] [--threads 1] [--steps 40]
        [--top 12] [--no-torch] [--json PATH]

For each workload of bench_train.py (same networks, batches, data, loss and optimizer) it reports:

1. phases: the median time per step of forward (the model), loss, zero_grad, backward and
   optimizer.step, uninstrumented;
2. kernels: every primitive op's ``forward`` and ``backward`` (and ``sgd_update``) timed by
   wrappers installed at run time (no library file is changed), in microseconds per step and per call;
   the framework's own cost is a phase's time minus the kernels inside it (Function.apply, Tensor
   creation, Module.__call__, the engine's sort, version checks and accumulation);
3. cProfile: the functions with the largest own time (tottime) per step;
4. memory (training): the bytes the graph holds after forward + loss (what backward needs), the
   largest allocation sites then, and the extra peak reached during backward (tracemalloc);
5. optionally torch's time per step on the same workload, for reference.

Timing: with ``--threads 1`` (the default) every figure is the main thread's CPU time
(``time.thread_time``), which a busy machine does not inflate the way it inflates wall time: the
figures are per-step CPU costs. With more threads the BLAS helper threads do part of the work, so the
wall clock (``time.perf_counter``) is used instead.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(_common.NETWORKS), help="profile one network")
    parser.add_argument("--mode", choices=("train", "infer"), help="profile one mode")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1: CPU-time figures)")
    parser.add_argument("--steps", type=int, default=40, help="steps per measurement (default 40)")
    parser.add_argument("--top", type=int, default=12, help="cProfile rows to show")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch reference timing")
    parser.add_argument("--lines", action="store_true", help="line timings of the hot kernels (needs line_profiler)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    _common.limit_threads(ARGS.threads)

import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402

import glassnet as gn  # noqa: E402
import glassnet.autograd.engine as engine  # noqa: E402
import glassnet.nn  # noqa: E402, F401
import glassnet.optim  # noqa: E402, F401
import glassnet.optim.sgd as sgd_module  # noqa: E402
from glassnet.autograd.function import Function  # noqa: E402

WORKLOADS = [
    ("mlp", "train", 32),
    ("mlp", "train", 128),
    ("mlp", "train", 512),
    ("mlp", "infer", 32),
    ("mlp", "infer", 128),
    ("mlp", "infer", 512),
    ("lenet", "train", 128),
    ("lenet", "infer", 128),
    ("bncnn", "train", 128),
    ("bncnn", "infer", 128),
]
PHASES = ("forward", "loss", "zero_grad", "backward", "step")


class Workload:
    """A glassnet model, loss, optimizer and batches built as bench_train.py builds them."""

    def __init__(self, network: str, mode: str, batch: int, lib=gn) -> None:
        self.network, self.mode, self.batch, self.lib = network, mode, batch, lib
        inputs, labels = _common.make_data(network, batch, max(4, 4096 // batch))
        n = len(inputs) // batch
        self.xs = [lib.from_numpy(inputs[i * batch : (i + 1) * batch]) for i in range(n)]
        self.ys = [lib.from_numpy(labels[i * batch : (i + 1) * batch]) for i in range(n)]
        lib.manual_seed(_common.WEIGHT_SEED)
        self.model = _common.NETWORKS[network][0](lib.nn)
        self.loss_fn = lib.nn.CrossEntropyLoss()
        self.optimizer = lib.optim.SGD(self.model.parameters(), lr=_common.LR, momentum=_common.MOMENTUM)
        self.k = 0
        self.model.train(mode == "train")

    def step(self, clock=None) -> dict | None:
        """One training or inference step on the next batch; with ``clock``, the time of each phase."""
        x, y = self.xs[self.k % len(self.xs)], self.ys[self.k % len(self.ys)]
        self.k += 1
        model = self.model
        if self.mode == "infer":
            t0 = clock() if clock else 0.0
            with self.lib.no_grad():
                model(x)
            return {"forward": clock() - t0} if clock else None
        if clock is None:
            loss = self.loss_fn(model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            return None
        t0 = clock()
        out = model(x)
        t1 = clock()
        loss = self.loss_fn(out, y)
        t2 = clock()
        self.optimizer.zero_grad()
        t3 = clock()
        loss.backward()
        t4 = clock()
        self.optimizer.step()
        t5 = clock()
        return {"forward": t1 - t0, "loss": t2 - t1, "zero_grad": t3 - t2, "backward": t4 - t3, "step": t5 - t4}


def measure_phases(w: Workload, steps: int, clock) -> dict:
    """Median microseconds per step of each phase, and of the whole step."""
    samples = [w.step(clock) for _ in range(steps)]
    phases = {k: statistics.median(s[k] for s in samples) * 1e6 for k in samples[0]}
    phases["total"] = statistics.median(sum(s.values()) for s in samples) * 1e6
    return phases


def _all_functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


class KernelTimer:
    """Wraps every op's forward/backward (and engine / optimizer helpers) with a timer while installed."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.totals = defaultdict(lambda: [0.0, 0])
        self.saved = []
        self.targets = [
            (cls, attr, cls.__name__, phase)
            for cls in _all_functions()
            for attr, phase in (("forward", "fwd"), ("backward", "bwd"))
            if attr in cls.__dict__
        ]
        self.targets += [
            (Function, "check_versions", "Function.check_versions", "engine"),
            (Function, "release", "Function.release", "engine"),
            (engine, "topological_order", "engine.topological_order", "engine"),
            (engine, "_accumulate", "engine._accumulate", "engine"),
            (sgd_module, "sgd_update", "sgd_update", "optim"),
        ]
        self.inner_bias, self.outer_bias = self._calibrate()

    def _wrap(self, owner, attr: str, key: str, phase: str) -> None:
        fn = owner.__dict__[attr]
        clock, totals = self.clock, self.totals
        entry_key = (phase, key)

        def timed(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = totals[entry_key]
                entry[0] += clock() - start
                entry[1] += 1

        self.saved.append((owner, attr, fn))
        setattr(owner, attr, timed)

    def install(self) -> None:
        for owner, attr, key, phase in self.targets:
            self._wrap(owner, attr, key, phase)

    def uninstall(self) -> None:
        for owner, attr, fn in reversed(self.saved):
            setattr(owner, attr, fn)
        self.saved.clear()

    def _calibrate(self) -> tuple[float, float]:
        """Per call: the time a wrapper records around nothing, and the time it adds seen from outside."""

        class _Noop:
            def run(self):
                return None

        noop, clock, n = _Noop(), self.clock, 20000
        start = clock()
        for _ in range(n):
            noop.run()
        bare = clock() - start
        self._wrap(_Noop, "run", "noop", "calibration")
        start = clock()
        for _ in range(n):
            noop.run()
        wrapped = clock() - start
        self.saved.clear()
        total, count = self.totals.pop(("calibration", "noop"))
        return total / count, (wrapped - bare) / n

    def take(self) -> dict:
        """The kernel times recorded since the last take, bias removed: {(phase, name): (seconds, calls)}."""
        out = {k: (max(t - c * self.inner_bias, 0.0), c) for k, (t, c) in self.totals.items()}
        self.totals.clear()
        return out


def measure(w: Workload, steps: int, clock) -> tuple[dict, list[dict], dict]:
    """Alternate plain and instrumented steps (so both see the same machine load).

    Returns the median phase times of the plain steps (us), the kernel rows (median us per step
    over the instrumented steps), and the median kernel time inside each phase (us per step).
    """
    timer = KernelTimer(clock)
    plain, instrumented = [], []
    for i in range(2 * steps):
        if i % 2:
            timer.install()
            w.step()
            timer.uninstall()
            instrumented.append(timer.take())
        else:
            plain.append(w.step(clock))
    phases = {k: statistics.median(s[k] for s in plain) * 1e6 for k in plain[0]}
    phases["total"] = statistics.median(sum(s.values()) for s in plain) * 1e6
    keys = sorted({k for s in instrumented for k in s})
    kernels = []
    for phase, name in keys:
        times = [s.get((phase, name), (0.0, 0))[0] * 1e6 for s in instrumented]
        calls = [s.get((phase, name), (0.0, 0))[1] for s in instrumented]
        us = statistics.median(times)
        n = statistics.mean(calls)
        kernels.append(
            {"phase": phase, "name": name, "us_per_step": us, "calls_per_step": n, "us_per_call": us / n if n else 0.0}
        )
    kernels.sort(key=lambda r: -r["us_per_step"])
    sums = {}
    for phase in ("fwd", "bwd", "engine", "optim"):
        per_step = [sum(t for (p, _), (t, _c) in s.items() if p == phase) for s in instrumented]
        sums[phase] = statistics.median(per_step) * 1e6
    return phases, kernels, sums


def profile_cprofile(w: Workload, steps: int, clock, top: int) -> list[dict]:
    """The ``top`` functions by own time under cProfile, in microseconds per step (inflated by the profiler)."""
    profiler = cProfile.Profile(clock)
    profiler.enable()
    for _ in range(steps):
        w.step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        short = filename.split("glassnet/")[-1] if "glassnet/" in filename else os.path.basename(filename)
        where = f"{short}:{line}({name})" if line else name
        rows.append(
            {
                "function": where,
                "calls_per_step": ncalls / steps,
                "tottime_us": tottime / steps * 1e6,
                "cumtime_us": cumtime / steps * 1e6,
                "share": tottime / total,
            }
        )
    rows.sort(key=lambda r: -r["tottime_us"])
    return rows[:top]


def profile_memory(w: Workload) -> dict:
    """Bytes held by the graph after forward + loss, its largest allocation sites, and backward's extra peak."""
    params = sum(p.data.nbytes for p in w.model.parameters())
    x, y = w.xs[0], w.ys[0]
    tracemalloc.start(8)
    try:
        base = tracemalloc.get_traced_memory()[0]
        before = tracemalloc.take_snapshot()
        loss = w.loss_fn(w.model(x), y)
        graph = tracemalloc.get_traced_memory()[0] - base
        snapshot = tracemalloc.take_snapshot()
        w.optimizer.zero_grad()
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        loss.backward()
        backward_peak = tracemalloc.get_traced_memory()[1] - held
        w.optimizer.step()
    finally:
        tracemalloc.stop()
    sites = []
    for stat in snapshot.compare_to(before, "traceback")[:6]:
        frame = next((f for f in reversed(stat.traceback) if "glassnet" in f.filename), stat.traceback[-1])
        sites.append({"site": f"{frame.filename.split('glassnet/')[-1]}:{frame.lineno}", "mib": stat.size_diff / 2**20})
    return {
        "params_mib": params / 2**20,
        "graph_mib": graph / 2**20,
        "backward_extra_peak_mib": backward_peak / 2**20,
        "sites": sites,
    }


def hot_functions() -> list:
    """The kernels worth a line-by-line look (the ones that dominate the conv, pool and norm workloads)."""
    import glassnet.ops.conv as conv
    import glassnet.ops.linalg as linalg
    import glassnet.ops.loss as loss
    import glassnet.ops.norm as norm
    import glassnet.ops.pool as pool

    return [
        conv.Conv2d.forward,
        conv._im2col,
        conv.Conv2d.backward,
        conv._weight_grad,
        conv._input_grad,
        pool.MaxPool2d.forward,
        pool.MaxPool2d.backward,
        norm.BatchNorm.forward,
        norm.BatchNorm.backward,
        linalg.Linear.backward,
        loss.CrossEntropy.forward,
        loss.CrossEntropy.backward,
        engine.backward,
    ]


def profile_lines(w: Workload, steps: int, min_share: float = 0.03) -> list[dict]:
    """Per hot function: its time per step and its lines taking at least ``min_share`` of it (line_profiler)."""
    import linecache

    from line_profiler import LineProfiler

    profiler = LineProfiler()
    for fn in hot_functions():
        profiler.add_function(fn)
    profiler.enable()
    for _ in range(steps):
        w.step()
    profiler.disable()
    stats = profiler.get_stats()
    rows = []
    for (filename, _first, name), timings in stats.timings.items():
        total = sum(t for _, _, t in timings) * stats.unit
        if not timings or total == 0:
            continue
        lines = []
        for lineno, hits, t in timings:
            if t * stats.unit >= min_share * total:
                code = linecache.getline(filename, lineno).strip()
                lines.append(
                    {
                        "line": lineno,
                        "code": code,
                        "hits_per_step": hits / steps,
                        "us_per_step": t * stats.unit / steps * 1e6,
                        "share": t * stats.unit / total,
                    }
                )
        rows.append(
            {
                "function": f"{filename.split('glassnet/')[-1]}:{name}",
                "us_per_step": total / steps * 1e6,
                "lines": lines,
            }
        )
    rows.sort(key=lambda r: -r["us_per_step"])
    return rows


def torch_reference(network: str, mode: str, batch: int, steps: int, clock, threads: int) -> dict | None:
    """torch's median time per step and per phase on the same workload (same clock, same threads)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    w = Workload(network, mode, batch, lib=_TorchLib(torch))
    for _ in range(5):
        w.step()
    return measure_phases(w, steps, clock)


class _TorchLib:
    """The few names of torch that Workload uses, spelled as glassnet spells them."""

    def __init__(self, torch) -> None:
        self.nn, self.optim, self.from_numpy, self.no_grad = torch.nn, torch.optim, torch.from_numpy, torch.no_grad
        self.manual_seed = torch.manual_seed


def profile_workload(network: str, mode: str, batch: int, args, clock) -> dict:
    w = Workload(network, mode, batch)
    for _ in range(5):
        w.step()
    phases, kernels, kernel_sum = measure(w, args.steps, clock)
    forward_us = phases["forward"] + phases.get("loss", 0.0)
    n_fwd = sum(r["calls_per_step"] for r in kernels if r["phase"] == "fwd")
    n_bwd = sum(r["calls_per_step"] for r in kernels if r["phase"] == "bwd")
    overhead = {
        "forward_us": forward_us - kernel_sum["fwd"],
        "forward_ops": n_fwd,
        "forward_us_per_op": (forward_us - kernel_sum["fwd"]) / max(n_fwd, 1),
    }
    if mode == "train":
        overhead.update(
            {
                "backward_us": phases["backward"] - kernel_sum["bwd"],
                "backward_engine_helpers_us": kernel_sum["engine"],
                "backward_ops": n_bwd,
                "backward_us_per_op": (phases["backward"] - kernel_sum["bwd"]) / max(n_bwd, 1),
                "step_us": phases["step"] - kernel_sum["optim"],
                "zero_grad_us": phases["zero_grad"],
            }
        )
    result = {
        "network": network,
        "mode": mode,
        "batch": batch,
        "phases_us": phases,
        "kernels": kernels,
        "kernel_us": kernel_sum,
        "overhead": overhead,
        "cprofile": profile_cprofile(w, max(5, args.steps // 2), clock, args.top),
    }
    if args.lines:
        result["lines"] = profile_lines(w, max(5, args.steps // 2))
    if mode == "train":
        result["memory"] = profile_memory(w)
    if not args.no_torch:
        result["torch_phases_us"] = torch_reference(network, mode, batch, args.steps, clock, args.threads)
    return result


def print_result(r: dict) -> None:
    p = r["phases_us"]
    samples_per_s = r["batch"] / p["total"] * 1e6
    print(
        f"\n=== {r['network']} {r['mode']} batch {r['batch']}: {p['total']:,.0f} us per step "
        f"({samples_per_s:,.0f} samples/s)"
    )
    t = r.get("torch_phases_us")
    phase_line = "  phases (us/step): " + ", ".join(f"{k} {v:,.0f}" for k, v in p.items() if k != "total")
    print(phase_line)
    if t:
        print(
            "  torch   (us/step): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in t.items() if k != "total")
            + f"; total {t['total']:,.0f} -> ratio glassnet/torch speed {t['total'] / p['total']:.2f}"
        )
    print(f"  {'kernel':34s} {'us/step':>9s} {'share':>6s} {'calls':>6s} {'us/call':>9s}")
    for k in r["kernels"]:
        if k["us_per_step"] < 0.01 * p["total"] and k["phase"] != "engine":
            continue
        print(
            f"  {k['phase'] + ' ' + k['name']:34s} {k['us_per_step']:9,.1f} {k['us_per_step'] / p['total']:6.1%} "
            f"{k['calls_per_step']:6.1f} {k['us_per_call']:9,.1f}"
        )
    o = r["overhead"]
    print(
        f"  framework overhead: forward {o['forward_us']:,.0f} us over {o['forward_ops']:.0f} ops "
        f"({o['forward_us_per_op']:.1f} us/op)",
        end="",
    )
    if "backward_us" in o:
        print(
            f"; backward {o['backward_us']:,.0f} us over {o['backward_ops']:.0f} ops "
            f"({o['backward_us_per_op']:.1f} us/op, of which engine helpers {o['backward_engine_helpers_us']:,.0f})"
            f"; step {o['step_us']:,.0f} us beyond sgd_update; zero_grad {o['zero_grad_us']:,.0f} us"
        )
    else:
        print()
    print(f"  cProfile, own time per step (inflated by the profiler): {'calls':>6s} {'tottime us':>11s} {'share':>6s}")
    for c in r["cprofile"]:
        print(f"    {c['function'][:70]:70s} {c['calls_per_step']:6.1f} {c['tottime_us']:11,.1f} {c['share']:6.1%}")
    for f in r.get("lines", []):
        print(f"  lines of {f['function']} ({f['us_per_step']:,.0f} us per step under line_profiler):")
        for ln in f["lines"]:
            print(f"    {ln['line']:4d} {ln['share']:6.1%} {ln['us_per_step']:9,.0f} us  {ln['code'][:90]}")
    m = r.get("memory")
    if m:
        print(
            f"  memory: parameters {m['params_mib']:.2f} MiB; graph after forward+loss {m['graph_mib']:.2f} MiB; "
            f"backward extra peak {m['backward_extra_peak_mib']:.2f} MiB; largest sites: "
            + ", ".join(f"{s['site']} {s['mib']:.1f}" for s in m["sites"])
        )


def main(args: argparse.Namespace) -> None:
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    if args.threads > 1:
        gn.set_num_threads(args.threads)  # glassnet's pool too, as bench_train.py gives it
    print(
        f"glassnet {gn.__version__}, numpy {np.__version__}, BLAS {_common.blas_description()}; "
        f"{args.threads} thread(s), clock {clock.__name__}, {args.steps} steps per measurement"
    )
    results = []
    for network, mode, batch in WORKLOADS:
        if (args.only and network != args.only) or (args.mode and mode != args.mode):
            continue
        result = profile_workload(network, mode, batch, args, clock)
        print_result(result)
        sys.stdout.flush()
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main(ARGS)
