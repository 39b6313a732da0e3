"""The ``deepgm`` command: list, train, eval, sample, inpaint and latex.

    deepgm list
    deepgm train vae --dataset digits --epochs 30 --out runs/vae
    deepgm eval runs/vae
    deepgm sample runs/vae -n 64 -o grid.png        (or -o samples.pt / samples.npy: the tensor)

Options come from config dataclasses (``deepgm train MODEL --help``), checked before anything runs
(:mod:`deepgm.zoo.options`); :mod:`deepgm.zoo.runs` guards run folders. Bad input and expected errors print one line
and exit 2 (``--debug``: the traceback); SIGINT/SIGTERM stop training after a checkpoint (exit 130/143).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from deepgm.errors import DeepGMError, DeepGMWarning
from deepgm.io import write_text_atomic
from deepgm.zoo.options import (
    add_config_options,
    config_from,
    count_arg,
    expected_errors,
    one_line,
    option_names,
    positive_arg,
    read_toml,
)

__all__ = ["main"]

EXIT_USAGE, EXIT_DIVERGED = 2, 1  # bad input or an expected error; a non-finite loss stopped training


class UsageError(DeepGMError):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside training (where the trainer checkpoints first): exit status 143."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _load_data(cfg: Any, pixels: str = "grey") -> Any:
    """:func:`deepgm.data.load_splits` of a ``DataConfig``, its errors as one-line usage errors (the
    missing-data advice in the CLI's words: ``--data-dir``, no ``download=True``)."""
    from deepgm.data import DatasetNotFoundError, load_splits

    try:
        return load_splits(cfg.dataset, cfg.data_dir, cfg.binarize, pixels)  # type: ignore[arg-type]
    except DatasetNotFoundError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "download=True" not in ln]
        raise UsageError(" ".join(lines).replace("pass data_dir=...", "pass --data-dir DIR")) from None
    except ValueError as err:
        raise UsageError(str(err)) from None


# -- commands -------------------------------------------------------------------------------------------
def cmd_list(_: argparse.Namespace) -> int:
    from deepgm.zoo import REGISTRY

    width = max(map(len, REGISTRY))
    for name in sorted(REGISTRY):
        print(f"{name:{width}s}  {REGISTRY[name].summary}")
    return 0


def _train_parser(entry: Any) -> argparse.ArgumentParser:
    from deepgm.data import DataConfig
    from deepgm.training import TrainerConfig

    p = _Parser(prog=f"deepgm train {entry.name}", description=entry.summary)
    p.add_argument("--config", type=Path, help="a TOML file of options ([model], [data], [train] tables)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<model>-<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint "
                   "(options not given keep the run's values)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (its files are deleted)")
    p.add_argument("--allow-changed", metavar="OPTION,...", default="",
                   help="with --resume: options that may differ from the run's (e.g. lr,batch-size)")
    p.add_argument("--eval-k", type=count_arg(1), default=1000,
                   help="importance samples for the final test NLL (default: 1000)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_config_options(p, DataConfig, "data")
    add_config_options(p, TrainerConfig, "training", prefix="tr", skip=("out_dir",))
    add_config_options(p, entry.config, f"{entry.name} options")
    return p


def cmd_train(argv: Sequence[str]) -> int:
    from deepgm import zoo
    from deepgm.data import DataConfig, resolve_binarize
    from deepgm.training import Trainer, TrainerConfig, TrainingInterrupted, TrainingStopped
    from deepgm.training import distributed as dist
    from deepgm.zoo import runs

    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: deepgm train MODEL [options]; models: " + ", ".join(zoo.names()))
            return 0
        raise UsageError("train needs a model name; see 'deepgm list'")
    try:
        entry = zoo.get(argv[0])
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None
    args = _train_parser(entry).parse_args(list(argv[1:]))
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    allowed = option_names(args.allow_changed, (entry.config, DataConfig, TrainerConfig), "--allow-changed")
    if allowed and not args.resume:
        raise UsageError("--allow-changed applies to --resume only")
    toml = read_toml(args.config)
    dataset = config_from(DataConfig, args, toml.get("data", {}), "data", "data").dataset
    out = args.out or Path("runs") / f"{entry.name}-{dataset}"
    meta = runs.read_run(out) if args.resume else {}
    if args.resume and not (out / "checkpoints" / "last").exists():
        raise UsageError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    model_cfg = config_from(entry.config, args, toml.get("model", {}), entry.name, "model",
                            base=meta.get("model_config"))
    data_cfg = config_from(DataConfig, args, toml.get("data", {}), "data", "data", base=meta.get("data_config"))
    data_cfg = dataclasses.replace(data_cfg, binarize=resolve_binarize(data_cfg.binarize, entry.pixels, dataset))
    tr_cfg = config_from(TrainerConfig, args, toml.get("train", {}), "train", "train", "tr",
                         base=meta.get("train_config"), out_dir=out)
    dist.init_from_env()
    lead = dist.rank() == 0
    configs = {"model_config": model_cfg, "data_config": data_cfg, "train_config": tr_cfg}
    with runs.hold_run(out) if lead else contextlib.nullcontext():
        if args.resume:  # the stored options are compared first; nothing is written
            meta, changes = runs.start_run(out, entry.name, configs, True, False, allowed, lead)
        torch.manual_seed(tr_cfg.seed)
        data = _load_data(data_cfg, entry.pixels)  # before a new run claims (--overwrite: clears) the folder
        if not args.resume:
            meta, changes = runs.start_run(out, entry.name, configs, False, args.overwrite, allowed, lead)
        try:
            model = entry.build(model_cfg, data.info)
        except (ValueError, TypeError) as err:
            raise UsageError(f"{entry.name}: {err}") from None
        if dist.is_active():
            dist.broadcast_module(model)
        prepare = entry.prepare or (lambda *_: data.train)
        try:  # before anything is written: the trainer checks the batch size against the data
            trainer = Trainer(model, prepare(model, model_cfg, data.splits, data.transform), tr_cfg, val=data.valid,
                              transform=data.transform, on_resume=runs.optimizer_settings(model, changes, model_cfg))
        except ValueError as err:
            raise UsageError(str(err)) from None
        if lead:
            runs.save_start(out, entry, configs, data.info, model, meta if args.resume else None, changes)
        print(f"training {entry.name} on {data_cfg.dataset} → {out}", file=sys.stderr)
        start = time.perf_counter()
        try:
            history = trainer.fit(resume=args.resume)
        except TrainingStopped as err:
            print(f"deepgm: error: {err}", file=sys.stderr)
            return EXIT_DIVERGED
        except TrainingInterrupted as err:
            print(f"deepgm: {err}; continue it with: deepgm train {entry.name} --out {out} --resume", file=sys.stderr)
            return 128 + err.signal
        if lead:
            _final_report(entry.name, model, data, history, trainer.pos.step, args.eval_k, out,
                          time.perf_counter() - start)
    return 0


def _final_report(name: str, model: Any, data: Any, history: dict[str, list[float]], steps: int, k: int,
                  out: Path, train_seconds: float) -> None:
    """The loss curve (when anything was logged), the test metrics and figures, ``metrics.json``."""
    from deepgm import viz

    if history["step"]:
        viz.save_training_curves(history, out / "loss_curve.png")
    metrics = {"model": name, "dataset": data.info.name, "steps": steps,
               **_evaluate(model, data.test, data.info, k, out), "train_seconds": round(train_seconds, 1)}
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


def _evaluate(model: Any, test: dict[str, torch.Tensor], info: Any, k: int, figures: Path | None = None) -> dict:
    """The model's own test metrics (and figures into ``figures``), timed as ``eval_seconds``."""
    start = time.perf_counter()
    result = dict(model.evaluate(test, k=k, info=info))
    if figures is not None:
        model.figures(figures, test, info)
    return {**result, "eval_seconds": round(time.perf_counter() - start, 1)}


def _load_run(run: Path, n_test: int | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
    """The run folder's :class:`deepgm.zoo.Run` and its test data (the first ``n_test`` examples, all for
    None; none for ``n_test=0``)."""
    from deepgm import zoo
    from deepgm.data import DataConfig

    loaded = zoo.load_run(run)
    test = _load_data(DataConfig(**loaded.data_config)).test if n_test != 0 else {}
    return loaded, {name: v[:n_test] for name, v in test.items()} if n_test else test


def cmd_eval(args: argparse.Namespace) -> int:
    run, test = _load_run(args.run, args.n_test)
    torch.manual_seed(args.seed)
    result = {"run": str(args.run), "model": run.meta["model"], "dataset": run.info.name, "test_sequences"
              if run.info.sequence else "test_images": len(test["x"]), **_evaluate(run.model, test, run.info, args.k)}
    print(json.dumps(result, indent=2), flush=True)  # first: a folder we cannot write loses nothing
    try:
        write_text_atomic(args.run / "eval.json", json.dumps(result, indent=2) + "\n")
    except OSError as err:
        raise UsageError(f"the result above was not saved: cannot write {args.run / 'eval.json'} "
                         f"({err.strerror or err})") from None
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from deepgm.models.evaluation import save_samples_to

    run, _ = _load_run(args.run, 0)
    if not hasattr(run.model, "generate"):
        raise UsageError(f"model {type(run.model).__name__} cannot generate samples")
    from deepgm.data import SCENE_DATASETS, DataInfo

    torch.manual_seed(args.seed)
    info = run.info
    if info.name in SCENE_DATASETS:  # GQN: query views rendered from the first test scenes' context views
        x = run.model.generate(args.n, scenes=_load_run(args.run, args.n)[1])
        info = DataInfo(info.name, tuple(x.shape[1:]), binary=False)
    elif args.steps is not None:  # a diffusion model's sampling steps (DDIM over fewer than its T)
        if "steps" not in inspect.signature(run.model.generate).parameters:
            raise UsageError(f"--steps: model {run.meta['model']} has no sampling steps to set")
        try:
            x = run.model.generate(args.n, steps=args.steps)
        except ValueError as err:
            raise UsageError(f"--steps: {err}") from None
    else:
        x = run.model.generate(args.n)
    try:
        written = save_samples_to(x, args.o or args.run / "samples.png", info)
    except ValueError as err:
        raise UsageError(f"-o: {err}") from None
    print("\n".join(map(str, written)))
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    from deepgm.models import FlowModel

    run, test = _load_run(args.run, args.n)
    if not isinstance(run.model, FlowModel):
        raise UsageError(f"inpainting needs a flow (an exact likelihood); run {args.run} is a {run.meta['model']}")
    if run.info.image_shape is None:
        raise UsageError(f"inpainting fills half of an image; the data of {args.run} has {run.info.x_dim} values")
    torch.manual_seed(args.seed)
    result = run.model.inpaint_figure(test["x"], run.info.image_shape, args.hide, args.o or args.run / "inpainting.png",
                                      steps=args.steps, lr=args.lr, step_size=args.step_size)
    print(json.dumps({"run": str(args.run), **result}, indent=2))
    return 0


def cmd_latex(args: argparse.Namespace) -> int:
    from deepgm import zoo

    try:
        entry = zoo.get(args.model)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None
    model = entry.build(entry.config(), entry.example_data)
    print(model.loss.to_latex())
    return 0


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deepgm", description="Deep generative models written as their maths.",
                epilog="--debug (anywhere): show the traceback of an error")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the models, one line each")
    sub.add_parser("train", help="train a model: deepgm train MODEL --help", add_help=False)
    sub.add_parser("world", help="the World Models pipeline: deepgm world --help", add_help=False)
    e = sub.add_parser("eval", help="the test metrics of a trained run (what its model family reports)")
    e.add_argument("run", type=Path)
    e.add_argument("--k", type=count_arg(1), default=5000, help="importance samples for a test NLL (default: 5000)")
    e.add_argument("--n-test", type=count_arg(1), default=None, help="evaluate the first N test examples only "
                   "(default: all)")
    e.add_argument("--seed", type=count_arg(0), default=0)
    s = sub.add_parser("sample", help="samples of a trained run: a PNG grid, or a .pt/.npy tensor (and a grid)")
    s.add_argument("run", type=Path)
    s.add_argument("-n", type=count_arg(1), default=64)
    s.add_argument("-o", type=Path, default=None, help="samples.png (default: RUN/samples.png), .pt or .npy")
    s.add_argument("--seed", type=count_arg(0), default=0)
    s.add_argument("--steps", type=count_arg(1), default=None,
                   help="a diffusion model's sampling steps: DDIM over this many of its T (default: its own)")
    ip = sub.add_parser("inpaint", help="fill half of test images with a trained flow (mode and MALA sample)")
    ip.add_argument("run", type=Path)
    ip.add_argument("--hide", default="bottom", choices=["bottom", "top", "left", "right"])
    ip.add_argument("-n", type=count_arg(1), default=8, help="how many test images")
    ip.add_argument("--steps", type=count_arg(1), default=300, help="Adam steps, then as many MALA steps")
    ip.add_argument("--lr", type=positive_arg, default=0.05)
    ip.add_argument("--step-size", type=positive_arg, default=0.01, help="MALA's initial step size (tuned)")
    ip.add_argument("-o", type=Path, default=None)
    ip.add_argument("--seed", type=count_arg(0), default=0)
    sub.add_parser("latex", help="print a model's objective in LaTeX").add_argument("model")
    return p


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise _Terminated()


def _format_warning(other: Any, message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """deepgm's warnings (a skipped checkpoint...) as one line each; others as ``other`` formats them."""
    if issubclass(category, DeepGMWarning):
        return f"deepgm: warning: {' '.join(str(message).split())}\n"
    return str(other(message, category, *args, **kwargs))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepgm`` command; returns the exit status (0; 1: training diverged; 2: bad
    input or an expected error, as one line; 130/143: stopped by SIGINT/SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DEEPGM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    caught: tuple[type[BaseException], ...] = (KeyboardInterrupt, *expected_errors())
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    fmt, warnings.formatwarning = warnings.formatwarning, functools.partial(_format_warning, warnings.formatwarning)
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        if argv and argv[0] == "world":
            from deepgm.worldmodels.cli import main as world
            return world(argv[1:])
        args = _main_parser().parse_args(argv)
        if args.command is None:
            _main_parser().print_help()
            return EXIT_USAGE
        return {"list": cmd_list, "eval": cmd_eval, "sample": cmd_sample, "inpaint": cmd_inpaint,
                "latex": cmd_latex}[args.command](args)
    except caught as err:
        if debug:
            traceback.print_exc()
        if isinstance(err, KeyboardInterrupt):
            sig = signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT
            print(f"deepgm: stopped by {sig.name}", file=sys.stderr)
            return 128 + sig
        print(f"deepgm: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        warnings.formatwarning = fmt
        if main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
