#!/usr/bin/env python3
"""Bounded-cache benchmark: speed and memory of a KV budget against the full cache, in one run.

Every measurement is a fresh `indexmem bench --json` process (so its peak resident memory is
its own); configurations alternate and each is repeated, keeping the best. Only ratios from
one run are meaningful on shared machines.

  * decode and prefill speed at a long context (default 4096 prompt tokens): each policy with
    --budget (default 256) against --policy full;
  * peak resident memory with the budget at a short and a long context (default 1024 and
    8000 tokens): a bounded cache should not grow with the context.

Usage (from the repository root, after `swift build -c release`):

    python3 scripts/bench_bounded.py [--policies window,h2o,snapkv] [--budget 256]
        [--context 4096] [--gen 64] [--memory-contexts 1024,8000] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(binary: str, prompt: int, gen: int, threads: int, cache: list[str]) -> dict:
    cmd = [binary, "bench", "--prompt-tokens", str(prompt), "--gen", str(gen), "--threads", str(threads), "--json"] + cache
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "indexmem"))
    ap.add_argument("--policies", default="window,h2o,snapkv")
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--memory-contexts", default="1024,8000")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    policies = args.policies.split(",")
    configs = [("full", [])] + [(p, ["--policy", p, "--budget", str(args.budget)]) for p in policies]

    best: dict[str, dict] = {}
    for r in range(args.repeats):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for name, cache in order:
            res = bench(args.binary, args.context, args.gen, args.threads, cache)
            t = res["timings"]
            print(f"bench: repeat {r + 1} {name:8s} prefill {t['prefill_tokens_per_second']:7.1f} tok/s  "
                  f"decode {t['decode_tokens_per_second']:6.1f} tok/s  KV peak {res['cache']['kv_bytes_peak'] / 2**20:7.2f} MiB  "
                  f"RSS peak {res['resident_bytes_peak'] / 2**20:7.1f} MiB", file=sys.stderr, flush=True)
            b = best.setdefault(name, {"prefill": 0.0, "decode": 0.0, "kv_peak": res["cache"]["kv_bytes_peak"], "rss": res["resident_bytes_peak"]})
            b["prefill"] = max(b["prefill"], t["prefill_tokens_per_second"])
            b["decode"] = max(b["decode"], t["decode_tokens_per_second"])
            b["rss"] = min(b["rss"], res["resident_bytes_peak"])

    full = best["full"]
    print(f"\n### Speed at {args.context} prompt tokens, {args.gen} decoded, budget {args.budget} (best of {args.repeats}, {args.threads} threads)\n")
    print("| policy | prefill tok/s | prefill vs full | decode tok/s | decode vs full | KV peak MiB | RSS peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _ in configs:
        b = best[name]
        print(f"| {name} | {b['prefill']:.1f} | {b['prefill'] / full['prefill']:.2f} | {b['decode']:.1f} | "
              f"{b['decode'] / full['decode']:.2f} | {b['kv_peak'] / 2**20:.2f} | {b['rss'] / 2**20:.1f} |")

    contexts = [int(x) for x in args.memory_contexts.split(",")]
    print(f"\n### Peak resident memory with budget {args.budget} (policy {policies[0]}), by context length\n")
    print("| context | KV peak MiB | RSS peak MiB |")
    print("|---:|---:|---:|")
    rows = []
    for n in contexts:
        res = min((bench(args.binary, n, 16, args.threads, ["--policy", policies[0], "--budget", str(args.budget)])
                   for _ in range(args.repeats)), key=lambda x: x["resident_bytes_peak"])
        rows.append(res)
        print(f"| {n} | {res['cache']['kv_bytes_peak'] / 2**20:.2f} | {res['resident_bytes_peak'] / 2**20:.1f} |")
    grow = (rows[-1]["resident_bytes_peak"] - rows[0]["resident_bytes_peak"]) / 2**20
    print(f"\nRSS growth from {contexts[0]} to {contexts[-1]} tokens: {grow:+.1f} MiB")


if __name__ == "__main__":
    main()
