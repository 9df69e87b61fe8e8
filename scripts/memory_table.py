#!/usr/bin/env python3
"""The latent memory's ablation tables from `indexmem eval run` results (paired samples).

Perplexity: per policy and budget, the mean perplexity without the memory, with it (and
with its closed form, memory-softmax, where run), the mean paired change in percent with a
95 % interval (t over the samples' paired differences) and in how many samples it lowered
perplexity. Task scores: per policy and budget, the mean score with and without memory and
the paired difference in points. Writes Markdown.

    python3 scripts/memory_table.py RESULTS.jsonl [RESULTS.jsonl ...] > table.md
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict

# Two-sided 95 % t quantiles by degrees of freedom (n - 1).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}


def t95(df: int) -> float:
    keys = sorted(k for k in T95 if k <= df)
    return T95[keys[-1]] if keys else float("nan")


def interval(values: list[float]) -> str:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:+.2f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    h = t95(n - 1) * sd / math.sqrt(n)
    return f"{mean:+.2f} ({mean - h:+.2f} to {mean + h:+.2f})"


def main() -> None:
    rows = []
    for path in sys.argv[1:]:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    # (task kind, policy, budget) -> memory -> sample id -> value
    ppl: dict = defaultdict(lambda: defaultdict(dict))
    score: dict = defaultdict(lambda: defaultdict(dict))
    full_ppl: dict = {}
    full_score: dict = defaultdict(list)
    for r in rows:
        memory = r.get("memory") or "off"
        if r["task"] == "perplexity":
            if r["budget"] is None:
                full_ppl[r["id"]] = r["perplexity"]
            else:
                ppl[(r["policy"], r["budget"])][memory][r["id"]] = r["perplexity"]
        else:
            if r["budget"] is None:
                full_score[r["task"]].append(r["score"])
            else:
                score[(r["policy"], r["budget"])][memory][(r["task"], r["id"])] = r["score"]
    out = []
    if ppl:
        out.append("| policy | budget | n | full | memory off | memory on | change with memory, % (95 % CI) | lower in | memory-softmax |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (policy, budget) in sorted(ppl, key=lambda k: (k[1], k[0])):
            cells = ppl[(policy, budget)]
            off, on = cells.get("off", {}), cells.get("on", {})
            ids = sorted(set(off) & set(on))
            if not ids:
                continue
            full = [full_ppl[i] for i in ids if i in full_ppl]
            changes = [100 * (on[i] / off[i] - 1) for i in ids]
            soft = cells.get("softmax", {})
            soft_ids = [i for i in ids if i in soft]
            out.append(f"| {policy} | {budget} | {len(ids)} | {sum(full) / len(full):.2f} | " if full else f"| {policy} | {budget} | {len(ids)} | | ")
            out[-1] += (f"{sum(off[i] for i in ids) / len(ids):.2f} | {sum(on[i] for i in ids) / len(ids):.2f} | {interval(changes)} | "
                        f"{sum(1 for c in changes if c < 0)}/{len(ids)} | "
                        + (f"{sum(soft[i] for i in soft_ids) / len(soft_ids):.2f} (n={len(soft_ids)})" if soft_ids else "") + " |")
    if score:
        if out:
            out.append("")
        full_mean = [v for vs in full_score.values() for v in vs]
        out.append("| policy | budget | n | memory off | memory on | difference, points (95 % CI) | full cache |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for (policy, budget) in sorted(score, key=lambda k: (k[1], k[0])):
            cells = score[(policy, budget)]
            off, on = cells.get("off", {}), cells.get("on", {})
            ids = sorted(set(off) & set(on))
            if not ids:
                continue
            diffs = [100 * (on[i] - off[i]) for i in ids]
            out.append(f"| {policy} | {budget} | {len(ids)} | {sum(off[i] for i in ids) / len(ids):.3f} | {sum(on[i] for i in ids) / len(ids):.3f} | "
                       f"{interval(diffs)} | " + (f"{sum(full_mean) / len(full_mean):.3f}" if full_mean else "") + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
