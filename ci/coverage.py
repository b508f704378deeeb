#!/usr/bin/env python3
"""Five identical runs: for each cell, in how many of the 20 ordered pairs
(i, j), i != j, run j's median lies inside run i's 95% CI of the median."""
import json, sys, glob
files = sorted(sys.argv[1:])
runs = [json.load(open(f)) for f in files]
cells = {}
for r in runs:
    for c in r["cells"]:
        k = (c["model"], c["framework"], c["mode"])
        cells.setdefault(k, []).append(c["latency"])
print(f"{len(files)} runs")
print("| model | framework | mode | medians ms | CI half-width (median run) | pairs inside |")
print("|---|---|---|---|---|---|")
tot = 0; n = 0
for k in sorted(cells):
    ls = cells[k]
    if len(ls) < 2: continue
    inside = sum(1 for i, a in enumerate(ls) for j, b in enumerate(ls)
                 if i != j and a["median_ci"][0] <= b["median"] <= a["median_ci"][1])
    pairs = len(ls) * (len(ls) - 1)
    tot += inside; n += pairs
    meds = sorted(l["median"] for l in ls)
    hw = sorted((l["median_ci"][1] - l["median_ci"][0]) / 2 / l["median"] * 100 for l in ls)[len(ls)//2]
    print(f"| {k[0]} | {k[1]} | {k[2]} | {meds[0]:.2f}-{meds[-1]:.2f} | ±{hw:.1f}% | {inside} of {pairs} |")
print(f"\nall cells: {tot} of {n} pairs ({100*tot/max(n,1):.0f}%)")
