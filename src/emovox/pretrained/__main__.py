"""``python -m emovox.pretrained``: replace a shipped model and keep its card true.

Run from the repository root (the result files the card names are read from there)::

    python -m emovox.pretrained install /tmp/bundle --carry-encoder \\
        --metrics RUN/metrics.json --gain GAIN.json --loco RUN/metrics.json
    python -m emovox.pretrained card     # re-render the card's numbers from the files it names
    python -m emovox.pretrained check    # exit status 1 when the card and the files disagree

``--model NAME`` (before the command) works on another shipped model (``fast-7``,
``ravdess-8``);
``check`` checks every shipped model unless one is named.
"""

from __future__ import annotations

import argparse
import sys

from emovox.pretrained import (
    MODEL_CARD,
    PRETRAINED_DIR,
    SHIPPED_MODELS,
    check_model_card,
    install_default_model,
    model_size,
    update_model_card,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m emovox.pretrained", description=__doc__)
    ap.add_argument("--root", default=".", help="Repository root (default: the current folder).")
    ap.add_argument(
        "--model",
        choices=list(SHIPPED_MODELS),
        help="The shipped model to work on (default: default; check: all of them).",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    ins = sub.add_parser("install", help="Copy a trained bundle into the package, render the card.")
    ins.add_argument("bundle", help="A folder written by `emovox train --out`.")
    ins.add_argument(
        "--carry-encoder",
        action="store_true",
        help="Copy the pretrained encoder the bundle reads into the model's folder too.",
    )
    for p in (ins, sub.add_parser("card", help="Re-render the card's generated block.")):
        p.add_argument("--metrics", help="metrics.json of `emovox evaluate` with the same recipe.")
        p.add_argument("--gain", help="JSON of benchmarks/gain_invariance.py.")
        p.add_argument("--loco", help="Leave-one-corpus-out metrics.json of the same recipe.")
    sub.add_parser("check", help="Check the card against the bundle and the result files.")
    args = ap.parse_args(argv)
    folder = PRETRAINED_DIR / (args.model or "default")
    try:
        if args.cmd == "install":
            path = install_default_model(
                args.bundle,
                args.metrics,
                args.gain,
                root=args.root,
                model_dir=folder,
                loco=args.loco,
                carry_encoder=args.carry_encoder,
            )
            print(f"installed {args.bundle} in {path} ({model_size(path) / 1e6:.2f} MB)")
        elif args.cmd == "card":
            card = update_model_card(
                args.metrics, args.gain, root=args.root, model_dir=folder, loco=args.loco
            )
            print(f"wrote {card}")
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    check_all = args.cmd == "check" and not args.model
    names = list(SHIPPED_MODELS) if check_all else [args.model or "default"]
    bad = False
    for name in names:
        problems = check_model_card(args.root, PRETRAINED_DIR / name)
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"{PRETRAINED_DIR / name / MODEL_CARD}: matches the bundle and its result files")
        bad = bad or bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
