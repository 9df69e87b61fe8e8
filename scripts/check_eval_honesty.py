#!/usr/bin/env python3
"""Is the evaluation harness honest? Full-cache answers must equal llama.cpp's greedy answers
on the same prompts.

Runs `indexmem eval run --policy full --record-prompts` on a few generated samples, then gives
llama.cpp (llama-cpp-python, the oracle) the very same token ids, in the same blocks (the
context in chunks of --chunk tokens, then the question block), decodes greedily until an
end-of-generation token or as many tokens as IndexMem produced, and compares the token ids.

Usage (repository root; needs `swift build -c release` and scripts/oracle_env.sh):

    .venv-oracle/bin/python scripts/check_eval_honesty.py [--tasks niah_single_prose,niah_multikey,...]
        [--lengths 1024,2048] [--samples 2] [--out /tmp/honesty.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "indexmem"))
    ap.add_argument("--model", default=os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--tasks", default="niah_single_prose,niah_single_uuid,niah_multikey,niah_multiquery,variable_tracking,frequent_words")
    ap.add_argument("--lengths", default="1024,2048")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/indexmem-honesty.jsonl")
    args = ap.parse_args()

    if os.path.exists(args.out):
        os.remove(args.out)
    subprocess.run([args.binary, "eval", "run", "--model", args.model, "--task", args.tasks, "--length", args.lengths,
                    "--samples", str(args.samples), "--policy", "full", "--chunk", str(args.chunk), "--record-prompts",
                    "--threads", str(args.threads), "--out", args.out], cwd=REPO, check=True)
    rows = [json.loads(line) for line in open(args.out)]

    import llama_cpp
    n_ctx = max(len(r["context_token_ids"]) + len(r["question_token_ids"]) + 128 for r in rows)
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=n_ctx, n_batch=512, n_threads=args.threads,
                          n_threads_batch=args.threads, logits_all=False, verbose=False)
    eog = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), i)}
    same = 0
    for r in rows:
        llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        ctx, q = r["context_token_ids"], r["question_token_ids"]
        for start in range(0, len(ctx), args.chunk):
            llm.eval(ctx[start:start + args.chunk])
        llm.eval(q)
        ours = r["output_token_ids"]
        theirs = []
        for _ in range(len(ours) + 1):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
            tok = int(np.argmax(logits))
            if tok in eog or len(theirs) == len(ours):
                break
            theirs.append(tok)
            llm.eval([tok])
        ok = theirs == ours
        same += ok
        print(f"{'same' if ok else 'DIFFERENT'}  {r['id']}: {len(ours)} tokens, score {r['score']:.2f}, output {r['output'][:60]!r}"
              + ("" if ok else f"\n    llama.cpp: {llm.detokenize(theirs).decode('utf-8', 'replace')[:60]!r}"))
    print(f"\n{same} of {len(rows)} full-cache answers are token-for-token llama.cpp's greedy answers "
          f"(tasks {args.tasks}, lengths {args.lengths}, {args.samples} samples each)")
    sys.exit(0 if same == len(rows) else 1)


if __name__ == "__main__":
    main()
