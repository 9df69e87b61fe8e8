#!/usr/bin/env python3
"""The learned indexer's headline table from an `indexmem eval run` results file.

Per task and policy: mean score over the samples; per policy: the mean over all its samples
with a 95 % interval (percentile bootstrap over samples, 2000 resamples, fixed seed), the
gap to the best heuristic and the share of the full cache's mean. Writes Markdown.

    python3 scripts/indexmem_headline.py RESULTS.jsonl [--budget 256] > docs/results/indexmem/headline.md
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict

LEARNED = ("indexmem",)


def bootstrap(values: list[float], rng: random.Random, resamples: int = 2000) -> tuple[float, float]:
    if not values:
        return (float("nan"), float("nan"))
    means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--budget", type=int, default=None, help="only this budget (and the full cache)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    by_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_policy: dict[str, list[float]] = defaultdict(list)
    budgets = set()
    for r in rows:
        if args.budget is not None and r.get("budget") not in (None, args.budget):
            continue
        name = r["policy"] if r.get("budget") is None else f'{r["policy"]} @ {r["budget"]}'
        budgets.add(r.get("budget"))
        by_task[r["task"]][name].append(r["score"])
        by_policy[name].append(r["score"])
    policies = sorted(by_policy, key=lambda p: (p != "full", p.startswith(LEARNED), p))
    tasks = sorted(by_task)
    rng = random.Random(20261201)
    out = sys.stdout
    n_per_cell = sorted({len(v) for t in by_task.values() for v in t.values()})
    out.write(f"{len(rows)} results; samples per cell: {', '.join(map(str, n_per_cell))}; "
              f"lengths {sorted({r['length'] for r in rows})}; modes {sorted({r['mode'] for r in rows})}.\n\n")
    out.write("| task | " + " | ".join(policies) + " |\n|---|" + "---:|" * len(policies) + "\n")
    for t in tasks:
        cells = [by_task[t].get(p, []) for p in policies]
        out.write(f"| {t} | " + " | ".join(f"{sum(c) / len(c):.2f}" if c else "–" for c in cells) + " |\n")
    means = {p: sum(v) / len(v) for p, v in by_policy.items()}
    cis = {p: bootstrap(v, rng) for p, v in by_policy.items()}
    out.write("| **mean (95 % CI)** | " + " | ".join(
        f"**{means[p]:.3f}** ({cis[p][0]:.3f}–{cis[p][1]:.3f}), n={len(by_policy[p])}" for p in policies) + " |\n\n")
    heuristics = [p for p in policies if p != "full" and not p.startswith(LEARNED)]
    if heuristics:
        best = max(heuristics, key=lambda p: means[p])
        out.write(f"Best heuristic: {best} ({means[best]:.3f}).\n\n")
        for p in policies:
            if p.startswith(LEARNED):
                share = f", {100 * means[p] / means['full']:.0f} % of the full cache's mean" if means.get("full") else ""
                out.write(f"- {p}: {100 * (means[p] - means[best]):+.1f} points over {best}{share}.\n")


if __name__ == "__main__":
    main()
