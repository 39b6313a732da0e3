"""The ``deepgm`` command: list, train, eval, sample and latex.

    deepgm list
    deepgm train vae --dataset digits --epochs 30 --out runs/vae
    deepgm eval runs/vae
    deepgm sample runs/vae -n 64 -o grid.png
    deepgm latex iwae

Each model's options come from its config dataclass, so ``deepgm train MODEL --help`` lists them. Bad
input (unknown model, option or value, missing data) prints one line naming what is wrong and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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


# -- config dataclasses as command-line options ----------------------------------------------------------
def _field_parser(tp: Any) -> tuple[Any, list[str] | None]:
    """(converter, choices) for a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = [str(c) for c in typing.get_args(tp)]
        return str, choices
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        conv, choices = _field_parser(args[0])
        return (lambda s: None if s.lower() == "none" else conv(s)), choices
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return (lambda s: tuple(inner(v) for v in s.replace(" ", "").split(",") if v)), None
    if tp is bool:
        return _parse_bool, None
    if tp in (int, float, str):
        return tp, None
    if tp is Path:
        return Path, None
    return str, None


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {s!r}")


def _add_config_options(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        conv, choices = _field_parser(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", type=conv, choices=choices,
                           default=None, metavar=None if choices else f.name.upper(),
                           help=f"(default: {shown})")


def _config_from(cls: type, args: argparse.Namespace, toml: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
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
        cli = getattr(args, f"cfg_{f.name}", None)
        if cli is not None:
            values[f.name] = cli
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{where}: {err}") from None


# -- data -----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class DataConfig:
    """Which data to train on."""

    dataset: str = "digits"
    data_dir: str | None = None
    # auto: dynamic binarisation for models with a Bernoulli likelihood, the grey levels for flows and GANs
    binarize: typing.Literal["auto", "dynamic", "none"] = "auto"


def _load_data(cfg: DataConfig, seed: int) -> tuple[Any, dict[str, dict[str, torch.Tensor]], Any]:
    """(DataInfo, {"train", "valid", "test"} tensors, training transform)."""
    from deepgm.data import DatasetNotFoundError, binarize_fixed, dataset_names, load_dataset
    from deepgm.zoo import DataInfo

    if cfg.dataset not in dataset_names():
        raise UsageError(f"unknown dataset {cfg.dataset!r}; valid: {', '.join(dataset_names())}")
    splits: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for split in ("train", "valid", "test"):
            kw: dict[str, Any] = {"flatten": True} if cfg.dataset in ("mnist", "fashion-mnist", "digits") else {}
            splits[split] = load_dataset(cfg.dataset, split, cfg.data_dir, seed=0, **kw).batch()  # type: ignore[attr-defined]
    except DatasetNotFoundError as err:
        raise UsageError(str(err).replace("\n", " ")) from None
    x = splits["train"]["x"]
    images = cfg.dataset in ("mnist", "fashion-mnist")
    binary = images and cfg.binarize == "dynamic"
    transform = None
    if binary:
        for split in ("valid", "test"):
            splits[split]["x"] = binarize_fixed(splits[split]["x"], seed=1234 + len(split))

        def transform(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {**batch, "x": torch.bernoulli(batch["x"])}

    n_classes = int(splits["train"]["y"].max()) + 1 if "y" in splits["train"] else None
    in_unit_interval = cfg.dataset in ("mnist", "fashion-mnist", "digits", "dsprites")  # images in [0, 1]
    info = DataInfo(cfg.dataset, tuple(x.shape[1:]), n_classes, binary=in_unit_interval)
    return info, splits, transform


def _upscaled(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images ``(N, C, H, W)`` from flat ``x``, pixels repeated so that small images (8×8 digits) show."""
    img = x.reshape(-1, *shape)
    factor = max(1, 28 // shape[-1])
    return img.repeat_interleave(factor, -1).repeat_interleave(factor, -2) if factor > 1 else img


def _image_shape(info: Any) -> tuple[int, int, int] | None:
    side = int(round(math.sqrt(info.x_dim)))
    return (1, side, side) if side * side == info.x_dim and info.x_dim > 2 else None


# -- commands -------------------------------------------------------------------------------------------
def cmd_list(_: argparse.Namespace) -> int:
    from deepgm.zoo import REGISTRY

    width = max(map(len, REGISTRY))
    for name in sorted(REGISTRY):
        print(f"{name:{width}s}  {REGISTRY[name].summary}")
    return 0


def _train_parser(entry: Any) -> argparse.ArgumentParser:
    from deepgm.training import TrainerConfig

    p = argparse.ArgumentParser(prog=f"deepgm train {entry.name}", description=entry.summary,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", type=Path, help="a TOML file of options ([model], [data], [train] tables)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<model>-<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--eval-k", type=int, default=1000, help="importance samples for the final test NLL")
    _add_config_options(p, DataConfig, "data")
    trainer_fields = [f for f in dataclasses.fields(TrainerConfig) if f.name not in ("out_dir",)]
    group = p.add_argument_group("training")
    hints = typing.get_type_hints(TrainerConfig)
    for f in trainer_fields:
        conv, choices = _field_parser(hints[f.name])
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"tr_{f.name}", type=conv, choices=choices,
                           default=None, help=f"(default: {f.default})")
    _add_config_options(p, entry.config, f"{entry.name} options")
    return p


def _trainer_config(args: argparse.Namespace, toml: dict[str, Any], out: Path) -> Any:
    from deepgm.training import TrainerConfig

    ns = argparse.Namespace(**{f"cfg_{k[3:]}": v for k, v in vars(args).items() if k.startswith("tr_")})
    cfg = _config_from(TrainerConfig, ns, toml, "train")
    cfg.out_dir = out
    return cfg


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


def _check_toml_keys(table: dict[str, Any], cls: type, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise UsageError(f"{where}: unknown option(s) {unknown}; valid: {sorted(names)}")


def cmd_train(argv: Sequence[str]) -> int:
    from deepgm import zoo
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
    parser = _train_parser(entry)
    args = _parse(parser, argv[1:])
    toml = _read_toml(args.config)
    _check_toml_keys(toml.get("model", {}), entry.config, "[model]")
    _check_toml_keys(toml.get("data", {}), DataConfig, "[data]")
    _check_toml_keys(toml.get("train", {}), TrainerConfig, "[train]")
    model_cfg = _config_from(entry.config, args, toml.get("model", {}), entry.name)
    data_cfg = _config_from(DataConfig, args, toml.get("data", {}), "data")
    if data_cfg.binarize == "auto":
        data_cfg = dataclasses.replace(data_cfg, binarize="dynamic" if entry.pixels == "binary" else "none")
    out = args.out or Path("runs") / f"{entry.name}-{data_cfg.dataset}"
    tr_cfg = _trainer_config(args, toml.get("train", {}), out)
    if args.resume and not (out / "checkpoints" / "last").exists():
        raise UsageError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    dist.init_from_env()
    torch.manual_seed(tr_cfg.seed)
    info, splits, transform = _load_data(data_cfg, tr_cfg.seed)
    try:
        model = entry.build(model_cfg, info)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{entry.name}: {err}") from None
    if dist.is_active():
        dist.broadcast_module(model)
    run = {"model": entry.name, "model_config": dataclasses.asdict(model_cfg),
           "data_config": dataclasses.asdict(data_cfg), "data_info": dataclasses.asdict(info),
           "objective": str(model.loss) if hasattr(model, "loss") else None}
    if dist.rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
        if hasattr(model, "loss"):
            (out / "objective.tex").write_text(model.loss.to_latex() + "\n")
    print(f"training {entry.name} on {data_cfg.dataset} → {out}", file=sys.stderr)
    train_data = splits["train"]
    if entry.prepare is not None:
        train_data = entry.prepare(model, model_cfg, splits, transform)
    trainer = Trainer(model, train_data, tr_cfg, val=splits["valid"], transform=transform)
    start = time.time()
    try:
        history = trainer.fit(resume=args.resume)
    except TrainingStopped as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if dist.rank() == 0:
        metrics = _final_report(model, entry, info, splits, history, out, args.eval_k)
        metrics["train_seconds"] = round(time.time() - start, 1)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps(metrics, indent=2))
    return 0


def _final_report(model: Any, entry: Any, info: Any, splits: dict[str, dict[str, torch.Tensor]],
                  history: dict[str, list[float]], out: Path, k: int) -> dict[str, Any]:
    """Test metrics and the standard plots of a trained model."""
    from deepgm import viz
    from deepgm.models import VAE

    metrics: dict[str, Any] = {"model": entry.name, "dataset": info.name,
                               "steps": history["step"][-1] if history["step"] else 0}
    curves = {"train": history["loss"]}
    if history["val_loss"]:
        curves["validation (per epoch)"] = history["val_loss"]
    viz.save_loss_curve(curves, out / "loss_curve.png", xlabel="logged point")
    test = splits["test"]
    if hasattr(model, "accuracy") and "y" in test:
        model.eval()
        metrics["test_accuracy"] = model.accuracy(test["x"], test["y"])
        metrics["test_error"] = 1 - metrics["test_accuracy"]
        model.train()
    if isinstance(model, VAE):
        x = test["x"]
        model.eval()
        metrics["test_elbo"] = float(model.elbo(x).mean())
        metrics[f"test_nll_k{k}"] = float(-model.log_likelihood(x, k=k, chunk=min(k, 500)).mean())
        shape = _image_shape(info)
        if shape is not None:
            big = _upscaled(x[:1], shape).shape[1:]
            viz.save_image_grid(_upscaled(model.generate(64), shape), out / "samples.png")
            viz.save_reconstructions(_upscaled(x[:8], shape), _upscaled(model.reconstruct(x[:8]), shape),
                                     out / "reconstructions.png", n=8)
            z0 = model.encode(x[:1])[0]
            viz.save_latent_traversal(lambda z: _upscaled(model.decode(z), shape), z0, out / "latent_traversal.png",
                                      dims=list(range(min(8, z0.numel()))), image_shape=tuple(big))
        z = model.encode(x)
        viz.save_latent_map_2d(z, test.get("y"), out / "latent_map.png")
        model.train()
    elif hasattr(model, "generate") and not hasattr(model, "bits_per_dim"):  # implicit models (GANs)
        shape = _image_shape(info)
        with torch.no_grad():
            samples = model.generate(64)
        if shape is not None:
            viz.save_image_grid(_upscaled(samples.clamp(0, 1), shape), out / "samples.png")
        elif info.x_dim == 2:
            viz.save_samples_2d(samples, out / "samples.png")
    if hasattr(model, "bits_per_dim"):  # a flow: exact likelihoods
        x = test["x"]
        metrics["test_nll_exact"] = float(-model.log_likelihood(x).mean())
        metrics["test_bits_per_dim"] = model.bits_per_dim(x)
        shape = _image_shape(info)
        if shape is not None:
            viz.save_image_grid(_upscaled(model.generate(64).clamp(0, 1), shape), out / "samples.png")
        elif info.x_dim == 2:
            viz.save_density_2d(lambda pts: model.log_likelihood(pts), out / "density.png",
                                samples=model.generate(1000))
    return metrics


def _load_run(run: Path) -> tuple[Any, Any, dict[str, Any]]:
    from deepgm import zoo
    from deepgm.training.checkpoint import CheckpointNotFoundError, latest_checkpoint, load_checkpoint

    meta_path = run / "run.json"
    if not meta_path.exists():
        raise UsageError(f"{run} is not a run folder (no run.json); train one with 'deepgm train'")
    meta = json.loads(meta_path.read_text())
    entry = zoo.get(meta["model"])
    cfg = entry.config(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model_config"].items()})
    info_d = meta["data_info"]
    info = zoo.DataInfo(info_d["name"], tuple(info_d["x_shape"]), info_d["n_classes"], info_d["binary"])
    model = entry.build(cfg, info)
    try:
        ckpt = latest_checkpoint(run / "checkpoints", "best" if (run / "checkpoints" / "best").exists() else "last")
    except CheckpointNotFoundError as err:
        raise UsageError(str(err)) from None
    load_checkpoint(ckpt, model)
    model.eval()
    return model, info, meta


def cmd_eval(args: argparse.Namespace) -> int:
    from deepgm.models import VAE

    model, info, meta = _load_run(args.run)
    data_cfg = DataConfig(**meta["data_config"])
    _, splits, _ = _load_data(data_cfg, 0)
    x = splits["test"]["x"]
    if args.n_test:
        x = x[: args.n_test]
    result: dict[str, Any] = {"run": str(args.run), "model": meta["model"], "dataset": data_cfg.dataset,
                              "test_images": len(x), "k": args.k}
    if isinstance(model, VAE):
        torch.manual_seed(args.seed)
        result["test_nll"] = float(-model.log_likelihood(x, k=args.k, chunk=min(args.k, 500)).mean())
        result["test_elbo"] = float(model.elbo(x).mean())
    elif hasattr(model, "bits_per_dim"):
        result["test_nll"] = float(-model.log_likelihood(x).mean())
        result["test_bits_per_dim"] = model.bits_per_dim(x)
        result["k"] = "exact"
    else:
        result["note"] = "this model has no likelihood bound; other metrics come with its family"
    (args.run / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from deepgm import viz

    model, info, _ = _load_run(args.run)
    if not hasattr(model, "generate"):
        raise UsageError(f"model {type(model).__name__} cannot generate samples")
    torch.manual_seed(args.seed)
    x = model.generate(args.n)
    shape = _image_shape(info)
    out = args.o or args.run / "samples.png"
    if shape is None:
        viz.save_samples_2d(x, out)
    else:
        viz.save_image_grid(_upscaled(x, shape), out)
    print(out)
    return 0


def _half_mask(shape: tuple[int, int, int], hide: str) -> torch.Tensor:
    """A flat mask over images of ``shape``: 1 where observed, 0 on the ``hide`` half."""
    _, h, w = shape
    m = torch.ones(shape)
    if hide == "bottom":
        m[:, h // 2:, :] = 0
    elif hide == "top":
        m[:, : h // 2, :] = 0
    elif hide == "left":
        m[:, :, : w // 2] = 0
    elif hide == "right":
        m[:, :, w // 2:] = 0
    else:
        raise UsageError(f"--hide must be bottom, top, left or right, got {hide!r}")
    return m.reshape(-1)


def cmd_inpaint(args: argparse.Namespace) -> int:
    from deepgm import viz
    from deepgm.flows import inpaint, inpaint_sample

    model, info, meta = _load_run(args.run)
    if not hasattr(model, "bits_per_dim"):
        raise UsageError(f"inpainting needs a flow (an exact likelihood); run {args.run} is a {meta['model']}")
    shape = _image_shape(info)
    if shape is None:
        raise UsageError(f"inpainting fills half of an image; the data of {args.run} has {info.x_dim} values")
    _, splits, _ = _load_data(DataConfig(**meta["data_config"]), 0)
    x = splits["test"]["x"][: args.n]
    mask = _half_mask(shape, args.hide)
    torch.manual_seed(args.seed)
    mode = inpaint(model.flow, x, mask, steps=args.steps, lr=args.lr)
    sampled, acceptance = inpaint_sample(model.flow, x, mask, steps=args.steps, step_size=args.step_size,
                                         init=mode)
    masked = x * mask + 0.5 * (1 - mask)
    rows = torch.cat([x, masked, mode, sampled])  # one row each: truth, input, mode, a posterior draw
    out = args.o or args.run / "inpainting.png"
    viz.save_image_grid(_upscaled(rows, shape), out, nrow=len(x))
    lp = {k: float(model.log_likelihood(v).mean()) for k, v in (("truth", x), ("observed, grey fill", masked),
                                                                  ("mode", mode), ("sample", sampled))}
    result = {"run": str(args.run), "hidden": args.hide, "images": len(x), "mala_acceptance": acceptance,
              "mean_log_likelihood": lp, "grid": str(out), "rows": ["truth", "observed", "mode (Adam)",
                                                                    "sample (MALA)"]}
    print(json.dumps(result, indent=2))
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    parser.error = lambda message: (_ for _ in ()).throw(UsageError(f"{parser.prog}: {message}"))  # type: ignore[method-assign]
    return parser.parse_args(list(argv))


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deepgm", description="Deep generative models written as their maths.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the models, one line each")
    sub.add_parser("train", help="train a model: deepgm train MODEL --help", add_help=False)
    e = sub.add_parser("eval", help="test NLL of a trained run (importance sampling)")
    e.add_argument("run", type=Path)
    e.add_argument("--k", type=int, default=5000)
    e.add_argument("--n-test", type=int, default=None, help="evaluate the first N test examples only")
    e.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sample", help="a grid of samples from a trained run")
    s.add_argument("run", type=Path)
    s.add_argument("-n", type=int, default=64)
    s.add_argument("-o", type=Path, default=None)
    s.add_argument("--seed", type=int, default=0)
    ip = sub.add_parser("inpaint", help="fill half of test images with a trained flow (mode and MALA sample)")
    ip.add_argument("run", type=Path)
    ip.add_argument("--hide", default="bottom", help="bottom, top, left or right")
    ip.add_argument("-n", type=int, default=8, help="how many test images")
    ip.add_argument("--steps", type=int, default=300, help="Adam steps, then as many MALA steps")
    ip.add_argument("--lr", type=float, default=0.05)
    ip.add_argument("--step-size", type=float, default=0.01, help="MALA's initial step size (tuned)")
    ip.add_argument("-o", type=Path, default=None)
    ip.add_argument("--seed", type=int, default=0)
    la = sub.add_parser("latex", help="print a model's objective in LaTeX")
    la.add_argument("model")
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
