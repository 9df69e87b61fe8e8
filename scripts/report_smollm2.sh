#!/usr/bin/env bash
# The committed SmolLM2 evaluation report, produced by this one command:
#   docs/results/smollm2/             RULER-style single-needle tasks and perplexity at 2K and 4K
#                                     tokens, every heuristic policy at budgets 64..1024 in both
#                                     modes, the full cache as reference (smollm2-sweep.json);
#   docs/results/smollm2-needle-grid/ needle depth x context length at budget 256
#                                     (smollm2-needle-grid.json).
#
#   scripts/report_smollm2.sh [SAMPLES]      # default: the configs' samples
#
# Resumable: results go to data/results/*.jsonl one line per sample; rerun after a kill (or
# with more samples) and only the missing samples run. Sharded on a cluster:
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
start=$SECONDS
.build/release/indexmem eval run --config docs/results/smollm2-sweep.json "${samples[@]}" --out data/results/smollm2.jsonl
.build/release/indexmem eval merge data/results/smollm2.jsonl --report docs/results/smollm2 \
    --title "SmolLM2-135M-Instruct: policies x budgets x modes at 2K and 4K tokens"
.build/release/indexmem eval run --config docs/results/smollm2-needle-grid.json --out data/results/smollm2-needle-grid.jsonl
.build/release/indexmem eval merge data/results/smollm2-needle-grid.jsonl --report docs/results/smollm2-needle-grid \
    --title "SmolLM2-135M-Instruct: needle depth x context length at budget 256"
echo "report: docs/results/smollm2 and docs/results/smollm2-needle-grid ($((SECONDS - start)) s of evaluation)"
