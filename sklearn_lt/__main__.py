"""Command line of sklearn_lt: ``python -m sklearn_lt`` or ``sklearn-lt``.

Subcommands:

``demo``
    Train ERM, LDAM-DRW, the logit-adjusted loss and a SMOTE pipeline on a
    long-tailed data set, print a table of balanced and per-group accuracy and
    write a per-class accuracy plot (:func:`sklearn_lt.demo.run_demo`).
"""

import argparse
import os
import sys

__all__ = ["main"]


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _ratio(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 1, got {text}")
    return value


def _build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sklearn-lt",
        description=(
            "sklearn_lt: scikit-learn classifiers for long-tailed classes, "
            "trained with skorch and PyTorch."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"sklearn_lt {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo_command(commands)
    return parser


def _add_demo_command(commands):
    """The ``demo`` subcommand and its options."""
    from .demo import DATASETS

    demo = commands.add_parser(
        "demo",
        help="compare ERM, LDAM-DRW, logit adjustment and SMOTE on a long tail",
        description=(
            "Train one network four ways on a long-tailed training set - ERM "
            "(loss='ce'), LDAM-DRW (loss='ldam', reweight_schedule='drw'), the "
            "logit-adjusted loss (loss='logit_adjusted') and an imbalanced-learn "
            "SMOTE pipeline before the ERM network - and evaluate them on a "
            "balanced test set. Prints balanced accuracy, the accuracy of the "
            "head, middle and tail thirds of the classes (by training count) and "
            "fit times, and writes a PNG of per-class accuracy against class "
            "frequency. Takes about 10 s on 2 CPU cores with the defaults."
        ),
    )
    demo.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's 8x8 digits, bundled, offline; fashion-mnist: "
        "needs the Fashion-MNIST IDX files (Debian package dataset-fashion-mnist, "
        "or --data-home) (default: digits)",
    )
    demo.add_argument(
        "--imbalance-ratio",
        type=_ratio,
        default=None,
        metavar="RHO",
        help="head-to-tail ratio of the training class sizes "
        "(default: 50 for digits, 100 for fashion-mnist)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="training epochs of every method (default: 30 for digits, 10 for "
        "fashion-mnist; 10 and 3 with --quick)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the data split and training (default: 0)",
    )
    demo.add_argument(
        "--device",
        default="auto",
        help="training device: auto (CUDA when available), cpu, cuda, cuda:1, ... "
        "(default: auto)",
    )
    demo.add_argument(
        "--model",
        choices=("cnn", "mlp"),
        default=None,
        help="LongTailImageClassifier(architecture='cnn') or LongTailClassifier's "
        "MLP (default: cnn for digits, mlp for fashion-mnist)",
    )
    demo.add_argument(
        "--output",
        default=None,
        metavar="PATH",
        help="PNG file, or directory that receives per_class_accuracy_<dataset>.png "
        "(default: ./sklearn_lt_demo/)",
    )
    demo.add_argument(
        "--no-plot", action="store_true", help="do not write the per-class plot"
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs (and a smaller fashion-mnist test set): a smoke test",
    )
    demo.add_argument(
        "--data-home",
        default=None,
        metavar="DIR",
        help="directory of the Fashion-MNIST files (default: "
        "$SKLEARN_LT_FASHION_MNIST or /usr/share/datasets/fashion-mnist)",
    )
    demo.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="PyTorch CPU threads; the demo networks are small, so 1 is as fast "
        "as more and robust on a busy machine (default: 1)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args):
    from .demo import run_demo

    run_demo(
        dataset=args.dataset,
        imbalance_ratio=args.imbalance_ratio,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        quick=args.quick,
        model=args.model,
        output=args.output,
        plot=not args.no_plot,
        data_home=args.data_home,
        n_threads=args.threads,
    )
    return 0


def main(argv=None):
    """Run the ``sklearn-lt`` command line.

    Parameters
    ----------
    argv : list of str or path-like, default=None
        Arguments without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed (the reason is printed on
        standard error), 2 for a usage error.

    Examples
    --------
    >>> from sklearn_lt.__main__ import main
    >>> main(["demo", "--quick", "--epochs", "1", "--no-plot"])  # doctest: +SKIP
    0
    """
    parser = _build_parser()
    if argv is not None:
        argv = [os.fspath(arg) for arg in argv]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sklearn-lt {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
