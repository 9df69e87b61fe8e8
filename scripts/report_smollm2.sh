#!/usr/bin/env bash
# The committed SmolLM2 evaluation report (docs/results/smollm2/): RULER-style single-needle
# tasks and perplexity at 2K and 4K tokens, every heuristic policy at budgets 64..1024 in both
# modes, the full cache as reference (docs/results/smollm2-sweep.json).
#
#   scripts/report_smollm2.sh [SAMPLES]      # default: the config's samples
#
# Resumable: results go to data/results/smollm2.jsonl one line per sample; rerun after a
# kill (or with more samples) and only the missing samples run. Sharded on a cluster:
#   indexmem eval run --config docs/results/smollm2-sweep.json --shard $K/$N --out shard$K.jsonl
# then `indexmem eval merge shard*.jsonl --report docs/results/smollm2`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/setup.sh haystack
swift build -c release --product indexmem
mkdir -p data/results
samples=()
[[ $# -ge 1 ]] && samples=(--samples "$1")
.build/release/indexmem eval run --config docs/results/smollm2-sweep.json "${samples[@]}" --out data/results/smollm2.jsonl
.build/release/indexmem eval merge data/results/smollm2.jsonl --report docs/results/smollm2 \
    --title "SmolLM2-135M-Instruct: policies x budgets x modes at 2K and 4K tokens"
