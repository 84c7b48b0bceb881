"""The ``glassnet`` command: train, evaluate, predict, inspect and gradcheck, over glassnet.train.

    glassnet train                                  # a small MLP on the digits shipped with glassnet
    glassnet train --model lenet --epochs 30 --save run.safetensors
    glassnet train --resume run.safetensors --epochs 40
    glassnet evaluate --checkpoint run.safetensors
    glassnet predict --checkpoint run.safetensors digit.png samples.npy
    glassnet inspect --model mlp:64,64 --activation sigmoid --init uniform --report report.html
    glassnet gradcheck --model lenet

A checkpoint carries in its metadata what rebuilds the model (spec, activation, input shape, class
count, input normalisation, data spec), so evaluate and predict need nothing else. Bad arguments,
unreadable data and damaged checkpoints end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

import glassnet as gn
from glassnet import nn, optim
from glassnet.autograd import GlassnetError
from glassnet.data import DataLoader, TensorDataset
from glassnet.train import ModelCheckpoint, Trainer, evaluate, read_checkpoint
from glassnet.train.data_spec import DATA_FORMS, DataSplit, fit_normalization, load_split, normalize
from glassnet.train.inputs import read_samples
from glassnet.train.models import ACTIVATIONS, INITS, build_model, initialize, parse_model_spec
from glassnet.train.progress import PROGRESS_MODES

# name -> (class, fixed options, default learning rate)
OPTIMIZERS: dict[str, tuple[type, dict[str, Any], float]] = {
    "sgd": (optim.SGD, {}, 0.1),
    "momentum": (optim.SGD, {"momentum": 0.9}, 0.05),
    "rmsprop": (optim.RMSprop, {}, 1e-3),
    "adam": (optim.Adam, {}, 1e-3),
    "adamw": (optim.AdamW, {}, 1e-3),
}
# Defaults of the options that shape a run; a resumed run takes them from its checkpoint instead.
RUN_DEFAULTS: dict[str, Any] = {
    "model": "mlp",
    "data": "digits",
    "optimizer": "adam",
    "lr": None,  # the optimizer's default learning rate
    "batch_size": 32,
    "init": "default",
    "activation": "relu",
    "seed": 0,
    "epochs": 30,
    "label_smoothing": 0.1,
    "schedule": "cosine",
}
SCHEDULES = ("cosine", "constant")
REBUILD_KEYS = ("model", "activation", "input_shape", "num_classes", "normalization", "data")
EVAL_BATCH = 512


class CommandError(GlassnetError):
    """A user mistake on the command line that no lower layer reports (conflicting options...)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _checked(convert, valid, expected: str):
    """An argparse ``type``: ``convert(text)``, refused with "expected <expected>" unless ``valid``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_positive_float = _checked(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction = _checked(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _model_spec(text: str) -> str:
    try:
        parse_model_spec(text)
    except GlassnetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip().lower()


def _run_options() -> argparse.ArgumentParser:
    """The options that define a model and its training (train, inspect, gradcheck share them)."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model and data")
    group.add_argument("--model", type=_model_spec, help="mlp (= mlp:256,128), mlp:H1,H2,... or lenet (default mlp)")
    group.add_argument("--data", help=f"{DATA_FORMS} (default digits)")
    group.add_argument("--init", choices=INITS, help="weight initialisation (default: PyTorch's)")
    group.add_argument("--activation", choices=list(ACTIVATIONS), help="hidden nonlinearity (default relu)")
    group.add_argument("--seed", type=int, help="seed of initialisation and shuffling (default 0)")
    group = parent.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, help="total epochs (default 30)")
    group.add_argument("--batch-size", type=_positive_int, help="samples per step (default 32)")
    group.add_argument("--lr", type=_positive_float, help="learning rate (default: the optimizer's, e.g. adam 1e-3)")
    group.add_argument("--optimizer", choices=list(OPTIMIZERS), help="sgd, momentum (SGD 0.9), rmsprop, adam, adamw")
    group.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning rate: cosine annealing to 0 over the epochs (default) or constant",
    )
    group.add_argument("--label-smoothing", type=_fraction, help="of the cross-entropy targets (default 0.1)")
    return parent


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _add_threads_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--threads",
        type=_positive_int,
        default=_available_cores(),
        metavar="N",
        help="threads for glassnet's kernels and the BLAS (default: the available cores, here %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``glassnet`` argument parser (subcommands train, evaluate, predict, inspect, gradcheck)."""
    parser = _Parser(prog="glassnet", description="Train, evaluate and look inside neural networks with glassnet.")
    parser.add_argument("--version", action="version", version=f"glassnet {gn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = _run_options()

    train = commands.add_parser("train", parents=[run], help="train a classifier and print its test accuracy")
    train.add_argument("--save", metavar="PATH", help="checkpoint after every epoch to PATH (.safetensors)")
    train.add_argument("--resume", metavar="PATH", help="continue the run saved in PATH (its options are kept)")
    _add_threads_option(train)
    train.add_argument("--progress", choices=PROGRESS_MODES, default="auto", help="progress display (default auto)")
    train.add_argument("--inspect", action="store_true", help="diagnose the first steps before training")
    train.add_argument("--inspect-steps", type=_positive_int, default=50, metavar="N", help="steps to diagnose")
    train.add_argument("--report", metavar="PATH", help="write the --inspect HTML report to PATH (implies --inspect)")

    evaluate = commands.add_parser("evaluate", help="test loss and accuracy of a saved model")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint from glassnet train --save")
    evaluate.add_argument("--data", help="evaluate on this data's test split (default: the data it was trained on)")
    _add_threads_option(evaluate)

    predict = commands.add_parser("predict", help="classify samples (.npy) or images (PNG, PGM)")
    predict.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint from glassnet train --save")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help=".npy array of one or many samples, or a PNG/PGM")
    predict.add_argument("--invert", action="store_true", help="images are dark ink on light paper: invert them")

    inspect = commands.add_parser("inspect", parents=[run], help="diagnose a short training run (glassnet.inspect)")
    inspect.add_argument("--steps", type=_positive_int, default=50, help="training steps to record (default 50)")
    inspect.add_argument("--report", metavar="PATH", help="write the HTML report to PATH")

    gradcheck = commands.add_parser("gradcheck", parents=[run], help="check backprop against finite differences")
    gradcheck.add_argument("--samples", type=_positive_int, default=4, help="batch size of the check (default 4)")
    return parser


def _resolved(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The run's options: given ones, else the checkpoint's (when resuming), else the defaults."""
    config = {}
    for key, default in RUN_DEFAULTS.items():
        given = getattr(args, key, None)
        if saved is None:
            config[key] = default if given is None else given
            continue
        if given is not None and key != "epochs" and given != saved.get(key):
            flag = "--" + key.replace("_", "-")
            raise CommandError(
                f"--resume: the checkpoint was trained with {flag} {saved.get(key)}; a resumed run keeps its "
                f"options (only --epochs and --save may change), got {flag} {given}"
            )
        config[key] = saved.get(key, default) if given is None else given
    if config["lr"] is None:
        config["lr"] = OPTIMIZERS[config["optimizer"]][2]
    return config


def _loader(split_x: np.ndarray, split_y: np.ndarray, batch_size: int, shuffle: bool) -> DataLoader:
    return DataLoader(TensorDataset(split_x, split_y), batch_size=batch_size, shuffle=shuffle)


@dataclass
class Run:
    """What a command builds from a run's options: data, model, optimizer, schedule, loss and loaders."""

    data: DataSplit
    model: nn.Module
    optimizer: optim.Optimizer
    scheduler: optim.lr_scheduler.LRScheduler | None
    loss_fn: nn.Module
    train_loader: DataLoader
    test_loader: DataLoader
    metadata: dict[str, Any]


def _setup(config: dict[str, Any], normalization: dict[str, float] | None = None) -> Run:
    """Build the run that ``config`` describes, seeded by ``config['seed']``."""
    data = load_split(config["data"])
    normalization = normalization or fit_normalization(data.x_train)
    x_train, x_test = normalize(data.x_train, normalization), normalize(data.x_test, normalization)
    gn.manual_seed(config["seed"])
    model = build_model(config["model"], data.input_shape, data.num_classes, config["activation"])
    initialize(model, config["init"], config["activation"])
    optimizer_class, options, _ = OPTIMIZERS[config["optimizer"]]
    optimizer = optimizer_class(model.parameters(), lr=config["lr"], **options)
    scheduler = None
    if config["schedule"] == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    metadata = {
        **config,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "normalization": normalization,
    }
    return Run(
        data,
        model,
        optimizer,
        scheduler,
        nn.CrossEntropyLoss(label_smoothing=config["label_smoothing"]),
        _loader(x_train, data.y_train, config["batch_size"], shuffle=True),
        _loader(x_test, data.y_test, EVAL_BATCH, shuffle=False),
        metadata,
    )


def _print_findings(findings) -> None:
    """Each finding as a heading line, then its explanation and its fix wrapped and indented."""
    if not findings:
        print("inspection: no problem found")
    for finding in findings:
        where = finding.label or (finding.layer if finding.layer is not None else "the whole model")
        print(f"inspection: [{finding.severity}] {finding.rule} at {where}, step {finding.step}")
        print(textwrap.fill(finding.explanation, 100, initial_indent="    ", subsequent_indent="    "))
        print(textwrap.fill("Fix: " + finding.suggestion, 100, initial_indent="    ", subsequent_indent="      "))


def _inspect(model, optimizer, loader, steps: int, report: str | None) -> None:
    """Diagnose ``steps`` training steps; parameters, optimizer and RNG are put back afterwards."""
    from glassnet.inspect import run_inspection

    rng = gn.get_rng_state()
    findings = run_inspection(model, nn.CrossEntropyLoss(), loader, optimizer, steps, report)
    gn.set_rng_state(rng)
    _print_findings(findings)
    if report is not None:
        print(f"inspection report written to {report}")


def _describe(config: dict[str, Any], data: DataSplit) -> str:
    return (
        f"training {config['model']} ({config['activation']}, init {config['init']}) on {config['data']}: "
        f"{len(data.x_train)} training / {len(data.x_test)} test samples, {data.num_classes} classes; "
        f"{config['optimizer']} lr {config['lr']:g} ({config['schedule']}), batch {config['batch_size']}, "
        f"{config['epochs']} epochs, label smoothing {config['label_smoothing']:g}, seed {config['seed']}"
    )


def _test_line(result: dict[str, float], count: int) -> str:
    correct = round(result["accuracy"] * count)
    return f"test accuracy: {result['accuracy']:.2%} ({correct}/{count}), test loss {result['loss']:.4f}"


def cmd_train(args: argparse.Namespace) -> int:
    state = read_checkpoint(args.resume) if args.resume else None
    saved = _cli_metadata(state, args.resume) if state is not None else None
    config = _resolved(args, saved)
    if args.save and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        raise CommandError(f"--save {args.save}: the folder does not exist")
    run = _setup(config, saved["normalization"] if saved else None)
    callbacks = [ModelCheckpoint(args.save)] if args.save else []
    trainer = Trainer(
        run.model, run.optimizer, run.loss_fn, scheduler=run.scheduler, callbacks=callbacks, progress=args.progress
    )
    if state is not None:
        trainer.load_state_dict(state)
        if run.scheduler is not None:
            run.scheduler.T_max = config["epochs"]  # a longer (or shorter) run: stretch the rest of the schedule
    trainer.metadata = run.metadata
    print(_describe(config, run.data), flush=True)
    if state is not None:
        print(f"resuming {args.resume} at epoch {trainer.epoch} (step {trainer.global_step})", flush=True)
    if args.inspect or args.report:
        _inspect(run.model, run.optimizer, run.train_loader, args.inspect_steps, args.report)
    epochs_before = trainer.epoch
    trainer.fit(run.train_loader, epochs=config["epochs"])
    if args.save and trainer.epoch == epochs_before:
        trainer.save_checkpoint(args.save)  # no epoch ran, so the callback saved nothing
    print(_test_line(trainer.evaluate(run.test_loader, nn.CrossEntropyLoss()), len(run.data.x_test)))
    if args.save:
        print(f"saved checkpoint to {args.save}")
    return 0


def _cli_metadata(state: dict[str, Any], path: str) -> dict[str, Any]:
    metadata = state["metadata"]
    missing = [key for key in REBUILD_KEYS if key not in metadata]
    if missing:
        raise CommandError(
            f"{path} is a Trainer checkpoint but was not saved by `glassnet train`: its metadata lacks {missing}"
        )
    return metadata


def _load_model(path: str):
    """The model saved in a checkpoint of ``glassnet train``, and the checkpoint's metadata."""
    state = read_checkpoint(path)
    metadata = _cli_metadata(state, path)
    model = build_model(
        metadata["model"], tuple(metadata["input_shape"]), int(metadata["num_classes"]), metadata["activation"]
    )
    try:
        model.load_state_dict(state["model"])
    except GlassnetError as error:
        raise CommandError(f"{path}: the saved weights do not fit the model its metadata describes: {error}") from None
    model.eval()
    return model, metadata


def cmd_evaluate(args: argparse.Namespace) -> int:
    model, metadata = _load_model(args.checkpoint)
    spec = args.data or metadata["data"]
    data = load_split(spec)
    if data.input_shape != tuple(metadata["input_shape"]):
        raise CommandError(
            f"--data {spec}: samples of shape {data.input_shape}, but the model takes {tuple(metadata['input_shape'])}"
        )
    if data.num_classes > int(metadata["num_classes"]):
        raise CommandError(f"--data {spec}: {data.num_classes} classes, the model knows {metadata['num_classes']}")
    loader = _loader(normalize(data.x_test, metadata["normalization"]), data.y_test, EVAL_BATCH, shuffle=False)
    result = evaluate(model, loader, nn.CrossEntropyLoss())
    print(f"{metadata['model']} on {spec}: {_test_line(result, len(data.x_test))}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model, metadata = _load_model(args.checkpoint)
    input_shape = tuple(metadata["input_shape"])
    names = metadata.get("class_names")
    batches = [(path, read_samples(path, input_shape, invert=args.invert)) for path in args.inputs]
    for path, batch in batches:
        with gn.no_grad():
            logits = model(gn.tensor(normalize(batch, metadata["normalization"])))
        probabilities = logits.softmax(dim=1).numpy()
        for i, row in enumerate(probabilities):
            label = int(row.argmax())
            name = f" ({names[label]})" if names else ""
            where = f"{path}[{i}]" if len(batch) > 1 else path
            print(f"{where}: class {label}{name}, probability {row[label]:.4f}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    config = _resolved(args, None)
    run = _setup(config)
    print(f"inspecting {config['model']} ({config['activation']}, init {config['init']}) on {config['data']}")
    _inspect(run.model, run.optimizer, run.train_loader, args.steps, args.report)
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from glassnet.inspect import gradcheck

    run = _setup(_resolved(args, None))
    inputs, targets = next(iter(DataLoader(run.test_loader.dataset, batch_size=args.samples)))
    result = gradcheck(run.model, inputs, loss_fn=nn.CrossEntropyLoss(), target=targets)
    print(result)
    return 0 if result.ok else 1


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "inspect": cmd_inspect,
    "gradcheck": cmd_gradcheck,
}


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``glassnet`` command with ``argv`` (``sys.argv[1:]`` when None); returns the exit code.

    Example:
        >>> main(["train", "--epochs", "1", "--progress", "none"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    prog = f"glassnet {args.command}"
    try:
        if getattr(args, "threads", None):
            gn.set_num_threads(args.threads)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (GlassnetError, OSError, ImportError, ValueError) as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug, not a user mistake: still one line, with how to see more
        if os.environ.get("GLASSNET_TRACEBACK"):
            raise
        print(
            f"{prog}: internal error: {type(error).__name__}: {_one_line(error)} "
            "(set GLASSNET_TRACEBACK=1 to see the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
