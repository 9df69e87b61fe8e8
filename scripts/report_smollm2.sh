#!/usr/bin/env bash
# The committed SmolLM2 evaluation report, produced by this one command:
#   docs/results/smollm2/             RULER-style single-needle tasks and perplexity at 2K and 4K
#                                     tokens, every heuristic policy at budgets 64..1024 in both
#                                     modes, the full cache as reference (smollm2-sweep.json);
#   docs/results/smollm2-needle-grid/ needle depth x context length at budget 256 (bounded mode)
#                                     (smollm2-needle-grid.json).
#
#   scripts/report_smollm2.sh [SAMPLES]      # default: the configs' samples
#
# Resumable: results go to data/results/*.jsonl one line per sample; rerun after a kill (or
# with more samples) and only the missing samples run. Sharded on a cluster:
#   indexmem eval run --config docs/results/smollm2-sweep.json --shard $K/$N --out shard$K.jsonl
# then `indexmem eval merge shard*.jsonl --report docs/results/smollm2`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/report_lib.sh"
report_prepare "$@"
report_sweep docs/results/smollm2-sweep.json data/results/smollm2.jsonl docs/results/smollm2 \
    "SmolLM2-135M-Instruct: policies x budgets x modes at 2K and 4K tokens"
# The needle grid keeps its own sample count.
report_samples=()
report_sweep docs/results/smollm2-needle-grid.json data/results/smollm2-needle-grid.jsonl docs/results/smollm2-needle-grid \
    "SmolLM2-135M-Instruct: needle depth x context length at budget 256, bounded mode"
echo "report: docs/results/smollm2 and docs/results/smollm2-needle-grid ($((SECONDS - report_start)) s of evaluation)"
