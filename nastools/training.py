"""Train an embedded supernet from its family's recipe: the command line of the one weight-sharing trainer.

The trainer (:mod:`nastools.supernets._training`: sandwich rule with in-place distillation, progressive
shrinking, the standalone reference), the checks (:mod:`nastools.supernets._checks`) and the
checkpoint format (:mod:`nastools.supernets._checkpoints`) are the same for every family and task:
images, text, translation. A family names its embedded recipes in its ``TRAINING`` table. Command
line::

    python -m nastools.training --supernet digits-mbv3 --out results/digits-mbv3.pt --report
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from nastools._outputs import check_output_file
from nastools.supernets._training import Recipe, TrainingConfig, train, train_supernet

__all__ = ["Recipe", "TrainingConfig", "main", "recipes", "train", "train_supernet"]


def recipes() -> dict[str, str]:
    """The embedded supernets that can be trained here: name to ``"module:recipe"`` (from the families)."""
    from nastools.supernet import _families

    found: dict[str, str] = {}
    for family in _families():
        found.update(getattr(family, "TRAINING", {}))
    return found


def _recipe(name: str) -> Recipe:
    available = recipes()
    if name not in available:
        raise ValueError(f"no training recipe for {name!r}; the recipes here are {sorted(available)}")
    module, _, attribute = available[name].partition(":")
    return getattr(importlib.import_module(module), attribute)()


def _check_room_for_checkpoint(out: Path, recipe: Recipe) -> None:
    """Raise unless the folder of ``out`` has room for ``recipe``'s checkpoint, before any training.

    The estimate is generous: 4 bytes for each parameter of the supernet (its largest network holds
    them all) and 1 MiB for the rest; a file ``out`` that the checkpoint replaces counts as room.

    Args:
        out: The checkpoint to write (its folder may not exist yet: the nearest one above is asked).
        recipe: The recipe whose network is built (untrained) to count its parameters.

    Raises:
        OSError: ``ENOSPC``, one line naming the folder, the space needed and the space available.
    """
    n_parameters = sum(parameter.numel() for parameter in recipe.build(recipe.model_config).parameters())
    needed = 4 * n_parameters + 2**20
    folder = next(folder for folder in (out.parent, *out.parent.parents) if folder.exists())
    available = shutil.disk_usage(folder).free + (out.stat().st_size if out.is_file() else 0)
    if available < needed:
        raise OSError(
            errno.ENOSPC,
            f"--out folder {folder} has {available / 1e6:.1f} MB free, the checkpoint of {recipe.name} needs "
            f"about {needed / 1e6:.1f} MB (4 bytes x {n_parameters:,} parameters + 1 MiB): free some space "
            "or choose another --out",
        )


def main(argv: list[str] | None = None) -> int:
    """Command line: train an embedded supernet, optionally measure its checks, write the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supernet", default="digits-mbv3", help="recipe name (see --list)")
    parser.add_argument("--out", help="checkpoint path to write (required)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--strategy", choices=["sandwich", "progressive"], help="default: the recipe's")
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--seed", type=int, help="default: the recipe's")
    parser.add_argument("--threads", type=int, help="default: the recipe's")
    parser.add_argument(
        "--report", action="store_true", help="also train the largest arch alone and measure the checks"
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(sorted(recipes())))
        return 0
    if args.out is None:
        parser.error("--out is required: the checkpoint to write (the shipped ones are in data/)")
    out = Path(args.out).expanduser()
    if out.is_dir():
        parser.error(
            f"--out {out} is a folder; give the checkpoint's file name, e.g. {out / (args.supernet + '.pt')}"
        )
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it (data/*.pt are the shipped checkpoints)")
    try:  # before the training, not after it
        check_output_file(out, "--out")
    except OSError as error:
        parser.error(str(error))
    overrides = {
        k: getattr(args, k) for k in ("strategy", "epochs", "seed", "threads") if getattr(args, k) is not None
    }
    try:
        replace(TrainingConfig(warmup_epochs=0), **overrides)  # the values alone, before torch loads
        recipe = _recipe(args.supernet)
        config = replace(recipe.training, **overrides)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    import torch

    from nastools.supernets._checkpoints import save_checkpoint

    try:
        _check_room_for_checkpoint(out, recipe)
    except OSError as error:
        parser.error(error.strerror or str(error))
    net, task, log = train_supernet(recipe, config)
    try:
        path = save_checkpoint(out, recipe.kind, net, task.config, config, log, {})  # kept if the checks fail
    except (OSError, RuntimeError) as error:  # torch's writer reports a failed write as a RuntimeError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        parser.exit(
            1, f"{parser.prog}: error: the trained supernet could not be written to {out}: {reason}\n"
        )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) after {log['seconds']:.0f} s of training")
    if args.report:
        from nastools.supernets._checks import supernet_report

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)  # the checks run on the training's threads too
        try:
            report = supernet_report(net, task, recipe, config)
        finally:
            torch.set_num_threads(previous_threads)
        print(json.dumps(report, indent=2))
        save_checkpoint(out, recipe.kind, net, task.config, config, log, report)
        print(f"added the checks to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
