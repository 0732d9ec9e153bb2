"""The ``rarelib`` command: :func:`rarelib.estimation.estimate` from a shell, and a look at a saved answer.

::

    rarelib estimate --model default --prompt "Once upon a time" --observable ari --threshold 12 --out ari.nc
    rarelib show ari.nc --plot ari.png

``estimate`` prints :meth:`~rarelib.estimation.Estimate.summary` (the tail, its intervals and the verdict)
on stdout and writes the estimate to ``--out``; progress bars go to stderr. Every intermediate result
lives in ``--checkpoint`` (by default beside ``--out``: ``ari.nc`` → ``ari.parts``), so after Ctrl-C
(exit status 130) the same command resumes, and a larger ``--budget`` continues a finished run.
Bad arguments, and the library's ``ValueError``/``FileNotFoundError``, end in one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path

from rarelib import estimation, models, storage
from rarelib import observables as obs

__all__ = ["build_parser", "default_checkpoint", "estimate_arguments", "main"]

PROG = "rarelib"
USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

ESTIMATE_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(estimation.estimate).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
"""The defaults of :func:`rarelib.estimation.estimate`, which the command's options share."""


# --------------------------------------------------------------------------- argument types


def _number_type(convert: Callable[[str], float], accept: Callable[[float], bool], wanted: str):
    """An argparse ``type``: ``convert`` the text, keep it if ``accept`` holds, else one line naming ``wanted``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}; got {text!r}")
        return value

    return parse


finite_float = _number_type(float, math.isfinite, "a finite number, e.g. 12 or -3.5")
positive_float = _number_type(float, lambda x: math.isfinite(x) and x > 0, "a positive number, e.g. 1e7")
positive_int = _number_type(int, lambda n: n >= 1, "a positive whole number, e.g. 64")
nonnegative_int = _number_type(int, lambda n: n >= 0, "a whole number ≥ 0, e.g. 0")


def netcdf_path(text: str) -> Path:
    """``text`` as the path of a ``.nc`` file (the format :meth:`~rarelib.estimation.Estimate.save` writes)."""
    path = Path(text)
    if path.suffix != ".nc":
        raise argparse.ArgumentTypeError(
            f"must be the path of a netCDF file ending in .nc, e.g. result.nc; got {text!r}"
        )
    return path


def default_checkpoint(out: Path) -> Path:
    """The checkpoint folder of an estimate written to ``out``: beside it, ``result.nc`` → ``result.parts``."""
    return Path(out).with_suffix(".parts")


# --------------------------------------------------------------------------- the parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in its help, unless it has none (None) or is a flag."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None or action.default is False else super()._get_help_string(action)


def _estimate_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``rarelib estimate``, named after :func:`rarelib.estimation.estimate`'s arguments (``dest``)."""
    d = ESTIMATE_DEFAULTS
    parser.add_argument("--model", default="default", help="'default', a save_pretrained folder or a cached hub id")
    parser.add_argument("--prompt", required=True, help="the text the completions continue")
    parser.add_argument("--observable", required=True, choices=sorted(obs.OBSERVABLES), help="φ, by name")
    parser.add_argument(
        "--threshold",
        dest="thresholds",
        action="append",
        type=finite_float,
        metavar="A",
        help="a point a of the tail P(φ ≥ a); repeat for several (none: the whole tail curve)",
    )
    parser.add_argument("--side", choices=["upper", "lower"], default=d["side"], help="P(φ ≥ a) or P(φ ≤ a)")
    parser.add_argument(
        "--budget",
        dest="budget_tokens",
        type=positive_float,
        default=d["budget_tokens"],
        metavar="TOKENS",
        help="tokens to draw at most, pilot and ladder included",
    )
    parser.add_argument(
        "--target-relative-half-width",
        type=positive_float,
        default=d["target_relative_half_width"],
        metavar="FRACTION",
        help="stop once every interval is within this fraction of its estimate",
    )
    counts = {
        "--length": ("completion_length", "TOKENS", "tokens per completion"),
        "--chains": ("n_chains", "N", "replica sets per rung"),
        "--pilot-samples": ("pilot_samples", "N", "direct samples drawn first"),
        "--ladder-steps": ("ladder_steps", "STEPS", "tempering steps of each run that places the ladder"),
        "--first-steps": ("first_steps", "STEPS", "tempering steps of the first round (each next round doubles)"),
    }
    for option, (dest, metavar, text) in counts.items():
        parser.add_argument(option, dest=dest, type=positive_int, default=d[dest], metavar=metavar, help=text)
    parser.add_argument("--seed", type=nonnegative_int, default=d["seed"], help="of every random stream")
    parser.add_argument("--device", default=d["device"], help="cpu, cuda, cuda:1, mps, ...")
    parser.add_argument("--dtype", choices=sorted(models.DTYPES), default=d["dtype"], help="of the weights")
    parser.add_argument("--out", required=True, type=netcdf_path, help="the .nc file the estimate is written to")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FOLDER",
        help="intermediate results, to resume from (default: OUT with the suffix .parts)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``rarelib`` parser: subcommands ``estimate`` and ``show``; each sets ``run`` to its function."""
    parser = argparse.ArgumentParser(prog=PROG, description="Rare event analysis of language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{estimate,show}")
    formatter = _HelpFormatter
    estimate = commands.add_parser(
        "estimate", help="estimate a tail probability with honest intervals", formatter_class=formatter
    )
    _estimate_options(estimate)
    estimate.set_defaults(run=run_estimate)
    show = commands.add_parser("show", help="print the summary of a saved estimate", formatter_class=formatter)
    show.add_argument("path", type=Path, help="a .nc file written by `rarelib estimate`")
    show.add_argument("--plot", type=Path, help="also save the tail plot to this image file (.png, .pdf, .svg)")
    show.set_defaults(run=run_show)
    return parser


# --------------------------------------------------------------------------- the commands


def estimate_arguments(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`rarelib.estimation.estimate` that ``rarelib estimate`` ``args`` ask for."""
    names = (
        "thresholds",
        "side",
        "budget_tokens",
        "target_relative_half_width",
        "completion_length",
        "n_chains",
        "pilot_samples",
        "ladder_steps",
        "first_steps",
        "seed",
        "device",
        "dtype",
    )
    return {
        "model": args.model,
        "prompt": args.prompt,
        "observable": args.observable,
        **{name: getattr(args, name) for name in names},
        "checkpoint": args.checkpoint or default_checkpoint(args.out),
        "progress": not args.quiet,
    }


def run_estimate(args: argparse.Namespace) -> int:
    """``rarelib estimate``: the summary on stdout, the estimate in ``args.out``; Ctrl-C leaves a resumable folder."""
    storage.check_file_path("--out", args.out)  # before hours of sampling, not after
    arguments = estimate_arguments(args)
    try:
        result = estimation.estimate(**arguments)
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; everything computed so far is in {arguments['checkpoint']}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    result.save(args.out)
    print(result.summary())
    if not args.quiet:
        print(f"{PROG}: estimate written to {args.out}", file=sys.stderr)
    return 0


def save_plot(result: estimation.Estimate, path: Path) -> None:
    """Save :meth:`~rarelib.estimation.Estimate.plot` of ``result`` to the image file ``path``."""
    import matplotlib.pyplot as plt

    figure = result.plot().figure
    try:
        figure.savefig(path, bbox_inches="tight")
    finally:
        plt.close(figure)


def run_show(args: argparse.Namespace) -> int:
    """``rarelib show``: the summary of a saved estimate on stdout, and its plot if ``--plot`` asks for it."""
    result = estimation.load(args.path)
    print(result.summary())
    if args.plot is not None:
        save_plot(result, args.plot)
    return 0


def _one_line(error: Exception) -> str:
    """The message of ``error`` on one line."""
    return " ".join(str(error).splitlines())


def main(argv: list[str] | None = None) -> int:
    """Run the ``rarelib`` command on ``argv`` (default: the command line); returns the exit status.

    Bad arguments exit (SystemExit) with status 2 through argparse; a ``ValueError`` or ``FileNotFoundError``
    from the library becomes one line ``rarelib: error: ...`` on stderr and status 2; Ctrl-C status 130.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED
