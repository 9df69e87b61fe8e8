#!/usr/bin/env bash
# The latent memory's committed report, docs/results/indexmem/memory-*, from this one command:
#
#   scripts/report_memory.sh [SAMPLES]      # default: the configs' samples
#
# It runs the shipped SmolLM2 adapter's memory (`indexmem train memory`, command in the
# adapter's metadata and in README's "Training the latent memory") on held-out samples (seed
# 20261201; the memory was fitted on other text, seed 1) with and without it, same samples:
#   memory-ppl-2k/     perplexity of 2,048-token prose at budgets 128, 256, 512 (1/16, 1/8,
#                      1/4), bounded mode, every policy with --memory off and on, and full
#                      (memory-ppl-2k.json);
#   memory-tasks-2k/   the ten RULER-style tasks at budget 128 (1/16), tova and indexmem with
#                      --memory off and on, and full (memory-tasks-2k.json);
#   memory-ppl-gemma-4k/  Gemma 3 270M, perplexity of 4,096-token prose at budgets 256 and 512
#                      (1/16, 1/8; its 3 global layers), window, tova, indexmem, off and on.
# Paired tables (scripts/memory_table.py) go into each directory's memory.md.
#
# Resumable: one result line per sample in data/results/memory-*.jsonl; rerun after a kill and
# only the missing ones run. Shard it on a cluster as scripts/report_indexmem.sh says.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/report_lib.sh"
report_prepare "$@"
report_sweep docs/results/indexmem/memory-ppl-2k.json data/results/memory-ppl-2k.jsonl docs/results/indexmem/memory-ppl-2k \
    "SmolLM2-135M-Instruct at 2K tokens: perplexity under a budget, with and without the latent memory"
python3 scripts/memory_table.py data/results/memory-ppl-2k.jsonl > docs/results/indexmem/memory-ppl-2k/memory.md
report_sweep docs/results/indexmem/memory-tasks-2k.json data/results/memory-tasks-2k.jsonl docs/results/indexmem/memory-tasks-2k \
    "SmolLM2-135M-Instruct at 2K tokens, budget 128: task scores with and without the latent memory"
python3 scripts/memory_table.py data/results/memory-tasks-2k.jsonl > docs/results/indexmem/memory-tasks-2k/memory.md
scripts/setup.sh gemma
report_sweep docs/results/indexmem/memory-ppl-gemma-4k.json data/results/memory-ppl-gemma-4k.jsonl docs/results/indexmem/memory-ppl-gemma-4k \
    "Gemma 3 270M at 4K tokens: perplexity under a budget, with and without the latent memory" --model models/gemma-3-270m-Q4_K_M.gguf
python3 scripts/memory_table.py data/results/memory-ppl-gemma-4k.jsonl > docs/results/indexmem/memory-ppl-gemma-4k/memory.md
echo "report: docs/results/indexmem/memory-* ($((SECONDS - report_start)) s of evaluation)"
