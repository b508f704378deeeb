#!/usr/bin/env python3
"""Compare a prediction with a golden reference made by ci/golden.py.

    golden_check.py --golden DIR --pred PRED.npy --model M --size S [--tol 1e-4]

Reads DIR/<M>_<S>_logits.npy and PRED.npy, prints the maximum absolute
difference, that difference relative to the largest reference magnitude, and
the top-1 agreement, and exits 1 when the shapes differ or the relative error
is >= tol (0 otherwise).
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--golden", type=Path, required=True, help="folder written by ci/golden.py")
    parser.add_argument("--pred", type=Path, required=True, help="predicted logits, .npy")
    parser.add_argument("--model", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--tol", type=float, default=1e-4, help="largest accepted max|diff|/max|ref| (exclusive)")
    args = parser.parse_args(argv)

    ref_path = args.golden / f"{args.model}_{args.size}_logits.npy"
    for path in (ref_path, args.pred):
        if not path.is_file():
            parser.error(f"no such file: {path}")
    ref = np.load(ref_path).astype(np.float64)
    pred = np.load(args.pred).astype(np.float64)
    label = f"{args.model} @ {args.size}"

    if ref.shape != pred.shape:
        print(f"{label}: FAIL shape {pred.shape} in {args.pred}, reference {ref.shape} in {ref_path}")
        return 1

    if not np.all(np.isfinite(pred)):
        print(f"{label}: FAIL prediction has non-finite values")
        return 1

    max_abs = float(np.max(np.abs(pred - ref)))
    rel = max_abs / max(float(np.max(np.abs(ref))), np.finfo(np.float64).tiny)
    # Top-1 per batch row (logits are [N, classes]).
    top1 = np.argmax(ref.reshape(ref.shape[0], -1), axis=1) == np.argmax(pred.reshape(pred.shape[0], -1), axis=1)

    ok = rel < args.tol
    print(
        f"{label}: {'ok' if ok else 'FAIL'}  max|diff| {max_abs:.3e}  "
        f"max|diff|/max|ref| {rel:.3e} (tol {args.tol:.0e})  "
        f"top-1 agree {int(top1.sum())}/{top1.size}"
    )
    # Informational only: randomly initialised deep nets give logits that are
    # mostly the same for every input, so max|ref| overstates the signal.
    # The error against the input-dependent part (reference minus its batch
    # mean) shows how much of that signal a wrong prediction would disturb.
    if ref.shape[0] > 1:
        spread = float(np.max(np.abs(ref - ref.mean(axis=0, keepdims=True))))
        print(f"{label}: input-dependent spread {spread:.3e}, max|diff|/spread {max_abs / max(spread, 1e-300):.3e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
