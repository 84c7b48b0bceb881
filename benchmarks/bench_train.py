"""Benchmark (issue 7): training and inference throughput and peak memory, glassnet vs PyTorch on the CPU.

Run from the repository root:

    .venv/bin/python benchmarks/bench_train.py [--quick] [--only mlp|lenet|bncnn] [--rounds N] [--json PATH]
                                               [--kernels numpy|compiled]

``--kernels numpy`` (the default) measures glassnet's pure NumPy path, the reference;
``--kernels compiled`` its compiled C kernels (the extension built at install), reported separately.

Workloads (float32, random MNIST-shaped data made by NumPy, no download):

    mlp    784-256-128-10, batch 32, 128 and 512, training and inference
    lenet  LeNet-5 (ReLU, max pooling), batch 128, training and inference
    bncnn  3 x (Conv2d 3x3 -> BatchNorm2d -> ReLU -> MaxPool2d(2)) on 28x28 + Linear, batch 128, both modes

A training step is forward, CrossEntropyLoss, zero_grad, backward, SGD(lr=0.01, momentum=0.9) step;
an inference step is a forward under no_grad with the model in eval mode. Both libraries start from
the same weights (torch's initialisation, loaded into glassnet with load_state_dict) and see the same
batches in the same order; the first losses and outputs are compared as a check that they compute
the same thing.

How it measures: each library runs in its own worker process (so that the other library is not
imported and its peak RSS is its own), with 2 threads (``--threads``): torch.set_num_threads(2), and
OMP/OPENBLAS/MKL_NUM_THREADS=2 set before NumPy is imported. For each workload the parent warms both
up, sizes a round to about ``--round-seconds`` of work, then alternates timed rounds in ABBA order
(glassnet, torch; torch, glassnet; ...) with a short pause between them (so that one library's idle BLAS threads
have stopped spinning before the other starts). Each round gives samples/s for both and their ratio
glassnet / torch (above 1: glassnet is faster); the table shows the medians of the rounds, and the
verdict uses the median of the per-round ratios. Peak RSS is ru_maxrss of each worker at the end of a
network's workloads, minus its RSS right after the data was created (the imports and the dataset
are not counted; the model, activations, gradients, optimizer state and allocator caches are).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (the benchmarks folder is not a package)

LIBRARIES = ("glassnet", "torch")
DATA_SAMPLES = 4096
WARMUP_STEPS = 3

# (network, batch) -> {mode: target ratio glassnet / torch, or None where issue 7 sets none}.
CONFIGS = {
    # Inference runs first, on the identical initial weights, so that its check compares like with like.
    ("mlp", 32): {"infer": 1.0, "train": 1.3},
    ("mlp", 128): {"infer": 1.0, "train": 1.2},
    ("mlp", 512): {"infer": 1.0, "train": None},
    ("lenet", 128): {"infer": 0.9, "train": 1.0},
    ("bncnn", 128): {"infer": 0.9, "train": 0.9},
}
RSS_TARGET = 0.5  # glassnet's peak RSS above its baseline at most this fraction of torch's


@dataclass
class WorkloadResult:
    """The rounds of one workload and their medians (samples per second; ratio = glassnet / torch)."""

    network: str
    mode: str
    batch: int
    steps_per_round: int
    target: float | None
    glassnet_sps: list[float] = field(default_factory=list)
    torch_sps: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    check: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.network} {self.mode} b{self.batch}"

    def summary(self) -> dict:
        ratio = statistics.median(self.ratios)
        return {
            "name": self.name,
            **asdict(self),
            "glassnet_sps_median": statistics.median(self.glassnet_sps),
            "torch_sps_median": statistics.median(self.torch_sps),
            "ratio_median": ratio,
            "met": None if self.target is None else ratio >= self.target,
        }


class Worker:
    """One library's worker process, driven by JSON lines on its stdin and stdout."""

    def __init__(self, library: str, threads: int, kernels: str) -> None:
        self.library = library
        # glassnet uses its C kernels whenever they were built; the variable says which path is measured.
        env = dict(os.environ, GLASSNET_COMPILED="1" if kernels == "compiled" else "0")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", library, "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )

    def call(self, **message) -> dict:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.library} worker exited (code {self.proc.wait()}) during {message}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the {self.library} worker failed on {message}:\n{reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def run_config(network: str, batch: int, targets: dict, args, meta: dict) -> tuple[list[WorkloadResult], dict]:
    """Benchmark one network at one batch size in both modes; returns the workloads and the memory row."""
    workers = {lib: Worker(lib, args.threads, args.kernels) for lib in LIBRARIES}  # both import in parallel
    try:
        with tempfile.TemporaryDirectory() as tmp:
            weights = os.path.join(tmp, "weights.npz")
            setup = {"network": network, "batch": batch, "num_batches": max(4, DATA_SAMPLES // batch)}
            info = {"torch": workers["torch"].call(cmd="setup", weights=weights, **setup)}
            info["glassnet"] = workers["glassnet"].call(cmd="setup", weights=weights, **setup)
        for lib in LIBRARIES:
            meta.setdefault("workers", {}).setdefault(lib, info[lib]["about"])
        results = [run_workload(workers, network, mode, batch, target, args) for mode, target in targets.items()]
        memory = {lib: workers[lib].call(cmd="memory") for lib in LIBRARIES}
    finally:
        for w in workers.values():
            w.close()
    gn_mb = (memory["glassnet"]["peak_kb"] - memory["glassnet"]["base_kb"]) / 1024
    torch_mb = (memory["torch"]["peak_kb"] - memory["torch"]["base_kb"]) / 1024
    row = {
        "name": f"{network} b{batch}",
        "glassnet_peak_mb": memory["glassnet"]["peak_kb"] / 1024,
        "glassnet_base_mb": memory["glassnet"]["base_kb"] / 1024,
        "glassnet_mb": gn_mb,
        "torch_peak_mb": memory["torch"]["peak_kb"] / 1024,
        "torch_base_mb": memory["torch"]["base_kb"] / 1024,
        "torch_mb": torch_mb,
        "ratio": gn_mb / torch_mb if torch_mb > 0 else float("nan"),
        "target": RSS_TARGET,
    }
    row["met"] = row["ratio"] <= RSS_TARGET
    return results, row


def run_workload(workers: dict, network: str, mode: str, batch: int, target, args) -> WorkloadResult:
    """Warm up, size the rounds, then alternate timed rounds glassnet / torch."""
    gn_w, torch_w = workers["glassnet"], workers["torch"]
    first = {lib: workers[lib].call(cmd="run", mode=mode, steps=WARMUP_STEPS) for lib in LIBRARIES}
    calibration = max(2, 2048 // batch)
    seconds = [workers[lib].call(cmd="run", mode=mode, steps=calibration)["seconds"] for lib in LIBRARIES]
    per_step = sum(seconds) / (2 * calibration)
    steps = max(3, round(args.round_seconds / per_step))
    a, b = first["glassnet"]["value"], first["torch"]["value"]
    result = WorkloadResult(network, mode, batch, steps, target)
    result.check = {
        "quantity": first["torch"]["quantity"],
        "glassnet": a,
        "torch": b,
        "rel_diff": abs(a - b) / max(abs(b), 1e-12),
    }
    for r in range(args.rounds):
        # ABBA order (glassnet first in even rounds, torch first in odd ones): a load that drifts or
        # comes and goes in step with the rounds favours neither library.
        t = {}
        for lib, worker in ((("glassnet", gn_w), ("torch", torch_w)))[:: 1 if r % 2 == 0 else -1]:
            time.sleep(args.pause)
            t[lib] = worker.call(cmd="run", mode=mode, steps=steps)["seconds"]
        t_gn, t_torch = t["glassnet"], t["torch"]
        result.glassnet_sps.append(steps * batch / t_gn)
        result.torch_sps.append(steps * batch / t_torch)
        result.ratios.append(t_torch / t_gn)
    return result


def print_results(results: list[WorkloadResult], memory: list[dict]) -> None:
    print()
    print(
        f"{'workload':20s} {'steps':>5s} {'glassnet/s':>11s} {'torch/s':>11s} {'ratio':>6s} "
        f"{'[min  - max]':>13s} {'target':>7s}  verdict"
    )
    for r in results:
        s = r.summary()
        target = "-" if r.target is None else f">={r.target:.1f}"
        verdict = "" if s["met"] is None else ("met" if s["met"] else "MISSED")
        print(
            f"{r.name:20s} {r.steps_per_round:5d} {s['glassnet_sps_median']:11,.0f} {s['torch_sps_median']:11,.0f} "
            f"{s['ratio_median']:6.2f} [{min(r.ratios):4.2f} - {max(r.ratios):4.2f}] {target:>7s}  {verdict}"
        )
    if memory:
        print()
        print(
            f"{'peak RSS (MiB)':20s} {'glassnet':>9s} {'(abs)':>7s} {'torch':>9s} {'(abs)':>7s} {'ratio':>6s} "
            f"{'target':>7s}  verdict"
        )
        for m in memory:
            print(
                f"{m['name']:20s} {m['glassnet_mb']:9.1f} {m['glassnet_peak_mb']:7.0f} {m['torch_mb']:9.1f} "
                f"{m['torch_peak_mb']:7.0f} {m['ratio']:6.2f} {'<=' + str(m['target']):>7s}  "
                f"{'met' if m['met'] else 'MISSED'}"
            )
        print("(peak RSS minus the RSS after the data was created; (abs): ru_maxrss of the worker process)")
    bad = [r.name for r in results if r.check["rel_diff"] > 1e-3]
    if bad:
        print(f"WARNING: glassnet and torch disagree (relative difference > 1e-3) on: {', '.join(bad)}")


def machine_description() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "loadavg_start": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of about 0.15 s (a smoke run)")
    parser.add_argument("--only", choices=sorted(_common.NETWORKS), help="benchmark one network")
    parser.add_argument("--rounds", type=int, help="timed rounds per workload (default 7, quick 3)")
    parser.add_argument("--round-seconds", type=float, help="work per library per round (default 0.4, quick 0.15)")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds of idle between two timed rounds")
    parser.add_argument("--threads", type=int, default=_common.THREADS, help="threads per library (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument(
        "--kernels",
        choices=("numpy", "compiled"),
        default="numpy",
        help="glassnet's pure NumPy kernels (default, the reference) or its compiled C kernels",
    )
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.threads)
        return
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.round_seconds = args.round_seconds or (0.15 if args.quick else 0.4)
    meta = machine_description()
    meta.update(rounds=args.rounds, round_seconds=args.round_seconds, threads=args.threads, kernels=args.kernels)
    print(
        f"{meta['cpu']}, {meta['cores']} cores, load average {meta['loadavg_start']}; "
        f"{args.threads} threads, float32; {args.rounds} rounds of ~{args.round_seconds} s per library; "
        f"glassnet's {args.kernels} kernels"
    )
    if meta["loadavg_start"] and meta["loadavg_start"][0] > meta["cores"]:
        print(
            "WARNING: the machine is busy (load average above the core count): the absolute figures are low "
            "and noisy; the per-round ratios are more robust"
        )
    start = time.perf_counter()
    results, memory = [], []
    for (network, batch), targets in CONFIGS.items():
        if args.only and network != args.only:
            continue
        config_results, row = run_config(network, batch, targets, args, meta)
        if len(memory) == 0:
            for lib, about in meta["workers"].items():
                print(f"  {lib}: {about}")
        for r in config_results:
            s = r.summary()
            print(
                f"  {r.name:20s} glassnet {s['glassnet_sps_median']:9,.0f}/s  torch {s['torch_sps_median']:9,.0f}/s"
                f"  ratio {s['ratio_median']:.2f}",
                flush=True,
            )
        results += config_results
        memory.append(row)
    meta["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta["seconds"] = time.perf_counter() - start
    print_results(results, memory)
    print(f"({meta['seconds']:.0f} s; load average at the end {meta['loadavg_end']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "workloads": [r.summary() for r in results], "memory": memory}, f, indent=1)
        print(f"wrote {args.json}")


def worker_main(library: str, threads: int) -> None:
    """Serve the parent's commands (setup, run, memory) for one library until stdin closes."""
    _common.limit_threads(threads)
    reply_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints go to stderr, not into the replies
    session = Session(library, threads)
    for line in sys.stdin:
        message = json.loads(line)
        try:
            reply = getattr(session, message.pop("cmd"))(**message)
        except Exception:
            reply = {"error": traceback.format_exc()}
        reply_stream.write(json.dumps(reply) + "\n")


class Session:
    """One library's model, optimizer and batches inside a worker; the same code drives both libraries."""

    def __init__(self, library: str, threads: int) -> None:
        import numpy as np

        self.np = np
        self.library = library
        if library == "torch":
            import torch

            torch.set_num_threads(threads)
            self.lib, self.nn, self.optim = torch, torch.nn, torch.optim
            version = f"{torch.__version__} ({torch.get_num_threads()} intra-op threads)"
        else:
            import glassnet as gn
            import glassnet.nn
            import glassnet.optim

            gn.set_num_threads(threads)  # as torch.set_num_threads above: glassnet's kernels and the BLAS
            if os.environ.get("GLASSNET_COMPILED") == "1" and gn.compiled.kernels() is None:
                raise SystemExit("--kernels compiled: glassnet's C kernels were not built (no C compiler at install)")
            self.lib, self.nn, self.optim = gn, gn.nn, gn.optim
            kernels = "C" if gn.compiled.is_enabled() else "NumPy"
            version = f"{gn.__version__} ({gn.get_num_threads()} threads, {kernels} kernels)"
        self.about = f"{library} {version}, numpy {np.__version__}, BLAS {_common.blas_description()}"
        self.counters = {"train": 0, "infer": 0}

    def setup(self, network: str, batch: int, num_batches: int, weights: str) -> dict:
        np, lib = self.np, self.lib
        inputs, labels = _common.make_data(network, batch, num_batches)
        self.xs = [lib.from_numpy(inputs[i * batch : (i + 1) * batch]) for i in range(num_batches)]
        self.ys = [lib.from_numpy(labels[i * batch : (i + 1) * batch]) for i in range(num_batches)]
        self.base_kb = _common.current_rss_kb()
        build = _common.NETWORKS[network][0]
        if self.library == "torch":
            lib.manual_seed(_common.WEIGHT_SEED)
            self.model = build(self.nn)
            np.savez(weights, **{k: v.detach().numpy() for k, v in self.model.state_dict().items()})
        else:
            self.model = build(self.nn)
            with np.load(weights) as stored:
                self.model.load_state_dict({k: stored[k] for k in stored.files})
        self.loss_fn = self.nn.CrossEntropyLoss()
        self.optimizer = self.optim.SGD(self.model.parameters(), lr=_common.LR, momentum=_common.MOMENTUM)
        return {"about": self.about, "base_kb": self.base_kb}

    def run(self, mode: str, steps: int) -> dict:
        """Time ``steps`` training or inference steps on the next batches; returns seconds and a check value."""
        xs, ys, n = self.xs, self.ys, len(self.xs)
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        i = self.counters[mode]
        if mode == "train":
            model.train()
            start = time.perf_counter()
            for k in range(i, i + steps):
                output = model(xs[k % n])
                loss = loss_fn(output, ys[k % n])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            seconds = time.perf_counter() - start
            quantity, value = "last training loss", float(loss.item())
        else:
            model.eval()
            start = time.perf_counter()
            with self.lib.no_grad():
                for k in range(i, i + steps):
                    output = model(xs[k % n])
            seconds = time.perf_counter() - start
            quantity, value = "sum |logits| of the last batch", float(self.np.abs(self.np.asarray(output)).sum())
        self.counters[mode] = i + steps
        return {"seconds": seconds, "quantity": quantity, "value": value}

    def memory(self) -> dict:
        return {"peak_kb": _common.peak_rss_kb(), "base_kb": self.base_kb}


if __name__ == "__main__":
    main()
