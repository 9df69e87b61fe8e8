#!/usr/bin/env bash
# The learned indexer's committed report, docs/results/indexmem/, from this one command:
#
#   scripts/report_indexmem.sh [SAMPLES]     # default: the configs' samples (20 per cell)
#
# It evaluates the shipped adapter (adapters/<model>.indexmem.safetensors, reproduced by the
# command in its metadata and in README's "Training an adapter") against the heuristics on
# held-out samples (seed 20261201; the indexer was never tuned on them; the development
# samples, seed 777, are docs/results/indexmem/smollm2-2k-dev.json):
#   smollm2-2k/   SmolLM2 at 2K tokens, the ten RULER-style tasks, budgets 128 and 256
#                 (1/16 and 1/8), bounded mode: full, window, snapkv, tova, pyramid,
#                 indexmem-query, indexmem-static (smollm2-2k.json).
#   gemma-4k/     Gemma 3 270M at 4K tokens, four needle tasks, budget 512 (1/8), bounded
#                 mode: full, snapkv, tova, indexmem-query, indexmem-static (gemma-4k.json).
#
# Resumable: one result line per sample in data/results/indexmem-*.jsonl; rerun after a kill,
# or with more samples, and only the missing ones run. On a cluster, shard it:
#   indexmem eval run --config docs/results/indexmem/smollm2-2k.json --shard $K/$N --out shard$K.jsonl
# then `indexmem eval merge shard*.jsonl --report docs/results/indexmem/smollm2-2k`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/report_lib.sh"
report_prepare "$@"
scripts/setup.sh gemma
report_sweep docs/results/indexmem/smollm2-2k.json data/results/indexmem-smollm2-2k.jsonl docs/results/indexmem/smollm2-2k \
    "SmolLM2-135M-Instruct at 2K tokens: learned indexer against heuristics, bounded mode"
python3 scripts/indexmem_headline.py data/results/indexmem-smollm2-2k.jsonl > docs/results/indexmem/smollm2-2k/headline.md
report_sweep docs/results/indexmem/gemma-4k.json data/results/indexmem-gemma-4k.jsonl docs/results/indexmem/gemma-4k \
    "Gemma 3 270M at 4K tokens: learned indexer against heuristics, bounded mode" --model models/gemma-3-270m-Q4_K_M.gguf
python3 scripts/indexmem_headline.py data/results/indexmem-gemma-4k.jsonl > docs/results/indexmem/gemma-4k/headline.md
echo "report: docs/results/indexmem/smollm2-2k ($((SECONDS - report_start)) s of evaluation)"
