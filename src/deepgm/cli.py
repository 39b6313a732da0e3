"""The ``deepgm`` command: list, train, eval, sample, inpaint and latex.

    deepgm list
    deepgm train vae --dataset digits --epochs 30 --out runs/vae
    deepgm eval runs/vae
    deepgm sample runs/vae -n 64 -o grid.png        (or -o samples.pt / samples.npy: the tensor)
    deepgm latex iwae

Options come from config dataclasses (``deepgm train MODEL --help``); bad input prints one line naming
what is wrong and exits 2. Models evaluate and draw themselves (:mod:`deepgm.models.evaluation`); the
data rules are :func:`deepgm.data.load_splits`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message}")


# -- config dataclasses as command-line options ----------------------------------------------------------
def _field_parser(tp: Any) -> tuple[Any, list[str] | None]:
    """(converter, choices) for a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return str, [str(c) for c in typing.get_args(tp)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        conv, choices = _field_parser(args[0])
        return (lambda s: None if s.lower() == "none" else conv(s)), choices
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return (lambda s: tuple(inner(v) for v in s.replace(" ", "").split(",") if v)), None
    if tp is bool:
        return _parse_bool, None
    if tp in (int, float, str, Path):
        return tp, None
    return str, None


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {s!r}")


def _add_config_options(parser: argparse.ArgumentParser, cls: type, title: str, prefix: str = "cfg",
                        skip: tuple[str, ...] = ()) -> None:
    """One option per field of ``cls`` (``--field-name``, stored as ``{prefix}_{field}``, None when not
    given so that a TOML value or the field's default applies); the help shows the field's default."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        conv, choices = _field_parser(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"{prefix}_{f.name}", type=conv, choices=choices,
                           default=None, metavar=None if choices else f.name.upper(), help=f"(default: {shown})")


def _config_from(cls: type, args: argparse.Namespace, toml: dict[str, Any], where: str, table: str,
                 prefix: str = "cfg", **fixed: Any) -> Any:
    """``cls`` from its defaults, overridden by the TOML ``[table]``, overridden by the command line."""
    hints = typing.get_type_hints(cls)
    names = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(toml) - set(names))
    if unknown:
        raise UsageError(f"[{table}]: unknown option(s) {unknown}; valid: {names}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in toml:
            conv, choices = _field_parser(hints[f.name])
            raw = toml[f.name]
            try:
                value = conv(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
            except (TypeError, ValueError) as err:
                raise UsageError(f"{where}: option '{f.name}' has a bad value {raw!r}: {err}") from None
            if choices and str(value) not in choices:
                raise UsageError(f"{where}: option '{f.name}' must be one of {choices}, got {raw!r}")
            values[f.name] = value
        cli = getattr(args, f"{prefix}_{f.name}", None)
        if cli is not None:
            values[f.name] = cli
    try:
        return cls(**{**values, **fixed})
    except (TypeError, ValueError) as err:
        raise UsageError(f"{where}: {err}") from None


def _read_toml(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"config file {path} is not valid TOML: {err}") from None
    unknown = set(data) - {"model", "data", "train"}
    if unknown:
        raise UsageError(f"config file {path}: unknown tables {sorted(unknown)}; expected [model], [data], [train]")
    return data


def _load_data(cfg: Any, pixels: str = "grey") -> Any:
    """:func:`deepgm.data.load_splits` of a ``DataConfig``, its errors as one-line usage errors."""
    from deepgm.data import DatasetNotFoundError, load_splits

    try:
        return load_splits(cfg.dataset, cfg.data_dir, cfg.binarize, pixels)  # type: ignore[arg-type]
    except DatasetNotFoundError as err:
        raise UsageError(str(err).replace("\n", " ")) from None
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
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--eval-k", type=int, default=1000, help="importance samples for the final test NLL (default: 1000)")
    _add_config_options(p, DataConfig, "data")
    _add_config_options(p, TrainerConfig, "training", prefix="tr", skip=("out_dir",))
    _add_config_options(p, entry.config, f"{entry.name} options")
    return p


def cmd_train(argv: Sequence[str]) -> int:
    from deepgm import zoo
    from deepgm.data import DataConfig, resolve_binarize
    from deepgm.training import Trainer, TrainerConfig, TrainingStopped
    from deepgm.training import distributed as dist

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
    toml = _read_toml(args.config)
    model_cfg = _config_from(entry.config, args, toml.get("model", {}), entry.name, "model")
    data_cfg = _config_from(DataConfig, args, toml.get("data", {}), "data", "data")
    data_cfg = dataclasses.replace(data_cfg, binarize=resolve_binarize(data_cfg.binarize, entry.pixels))
    out = args.out or Path("runs") / f"{entry.name}-{data_cfg.dataset}"
    tr_cfg = _config_from(TrainerConfig, args, toml.get("train", {}), "train", "train", "tr", out_dir=out)
    if args.resume and not (out / "checkpoints" / "last").exists():
        raise UsageError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    dist.init_from_env()
    torch.manual_seed(tr_cfg.seed)
    data = _load_data(data_cfg, entry.pixels)
    try:
        model = entry.build(model_cfg, data.info)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{entry.name}: {err}") from None
    if dist.is_active():
        dist.broadcast_module(model)
    if dist.rank() == 0:
        zoo.write_run(out, entry, model_cfg, data_cfg, data.info, model)
    print(f"training {entry.name} on {data_cfg.dataset} → {out}", file=sys.stderr)
    train_data = data.train
    if entry.prepare is not None:
        train_data = entry.prepare(model, model_cfg, data.splits, data.transform)
    trainer = Trainer(model, train_data, tr_cfg, val=data.valid, transform=data.transform)
    start = time.perf_counter()
    try:
        history = trainer.fit(resume=args.resume)
    except TrainingStopped as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    train_seconds = time.perf_counter() - start
    if dist.rank() == 0:
        from deepgm import viz

        viz.save_training_curves(history, out / "loss_curve.png")
        metrics = {"model": entry.name, "dataset": data.info.name, "steps": history["step"][-1] if history["step"]
                   else 0, **_evaluate(model, data.test, data.info, args.eval_k, out),
                   "train_seconds": round(train_seconds, 1)}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps(metrics, indent=2))
    return 0


def _evaluate(model: Any, test: dict[str, torch.Tensor], info: Any, k: int, figures: Path | None) -> dict[str, Any]:
    """The model's own test metrics (and figures into ``figures``), timed as ``eval_seconds``."""
    start = time.perf_counter()
    result = dict(model.evaluate(test, k=k, info=info))
    if figures is not None:
        model.figures(figures, test, info)
    return {**result, "eval_seconds": round(time.perf_counter() - start, 1)}


def _load_run(run: Path, n_test: int | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
    """The run folder's :class:`deepgm.zoo.Run` and its test data (the first ``n_test`` examples; none
    for ``n_test=0``)."""
    from deepgm import zoo
    from deepgm.data import DataConfig

    try:
        loaded = zoo.load_run(run)
    except zoo.RunNotFoundError as err:
        raise UsageError(str(err)) from None
    test = _load_data(DataConfig(**loaded.data_config)).test if n_test != 0 else {}
    return loaded, {name: v[:n_test] for name, v in test.items()} if n_test else test


def cmd_eval(args: argparse.Namespace) -> int:
    run, test = _load_run(args.run, args.n_test)
    torch.manual_seed(args.seed)
    result = {"run": str(args.run), "model": run.meta["model"], "dataset": run.info.name,
              "test_images": len(test["x"]), **_evaluate(run.model, test, run.info, args.k, None)}
    (args.run / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from deepgm.models.evaluation import save_samples_to

    run, _ = _load_run(args.run, 0)
    if not hasattr(run.model, "generate"):
        raise UsageError(f"model {type(run.model).__name__} cannot generate samples")
    torch.manual_seed(args.seed)
    x = run.model.generate(args.n)
    try:
        written = save_samples_to(x, args.o or args.run / "samples.png", run.info)
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
    model = entry.build(entry.config(), zoo.DataInfo("digits", (64,), 10))
    print(model.loss.to_latex())
    return 0


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deepgm", description="Deep generative models written as their maths.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the models, one line each")
    sub.add_parser("train", help="train a model: deepgm train MODEL --help", add_help=False)
    e = sub.add_parser("eval", help="the test metrics of a trained run (what its model family reports)")
    e.add_argument("run", type=Path)
    e.add_argument("--k", type=int, default=5000, help="importance samples for a test NLL (default: 5000)")
    e.add_argument("--n-test", type=int, default=None, help="evaluate the first N test examples only")
    e.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sample", help="samples of a trained run: a PNG grid, or a .pt/.npy tensor (and a grid)")
    s.add_argument("run", type=Path)
    s.add_argument("-n", type=int, default=64)
    s.add_argument("-o", type=Path, default=None, help="samples.png (default: RUN/samples.png), .pt or .npy")
    s.add_argument("--seed", type=int, default=0)
    ip = sub.add_parser("inpaint", help="fill half of test images with a trained flow (mode and MALA sample)")
    ip.add_argument("run", type=Path)
    ip.add_argument("--hide", default="bottom", choices=["bottom", "top", "left", "right"])
    ip.add_argument("-n", type=int, default=8, help="how many test images")
    ip.add_argument("--steps", type=int, default=300, help="Adam steps, then as many MALA steps")
    ip.add_argument("--lr", type=float, default=0.05)
    ip.add_argument("--step-size", type=float, default=0.01, help="MALA's initial step size (tuned)")
    ip.add_argument("-o", type=Path, default=None)
    ip.add_argument("--seed", type=int, default=0)
    sub.add_parser("latex", help="print a model's objective in LaTeX").add_argument("model")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepgm`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        args = _main_parser().parse_args(argv)
        if args.command is None:
            _main_parser().print_help()
            return EXIT_USAGE
        return {"list": cmd_list, "eval": cmd_eval, "sample": cmd_sample, "inpaint": cmd_inpaint,
                "latex": cmd_latex}[args.command](args)
    except UsageError as err:
        print(f"deepgm: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
