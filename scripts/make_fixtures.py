#!/usr/bin/env python3
"""Write the llama.cpp reference fixtures for SmolLM2 (Tests/Fixtures/smollm2/) or Gemma 3 (Tests/Fixtures/gemma3/).

llama.cpp (through the PyPI package llama-cpp-python, pinned in
scripts/requirements-oracle.txt) is the oracle for correctness. This script runs it on
models/SmolLM2-135M-Instruct.Q4_1.gguf and writes JSON files that the Swift tests
compare against:

  tokenize.json    token ids of ~30 varied texts (prose, whitespace, code, numbers,
                   emoji, several scripts, empty string, chat special tokens).
                   No BOS (SmolLM2's GGUF says add_bos = false; recorded as "add_bos").
  greedy.json      prompts (raw text and ChatML-formatted text) with their prompt ids,
                   32 greedy tokens (argmax of the logits computed here, ties -> lowest
                   id, one token evaluated at a time after the prompt), the top-10 logits
                   and max/mean/std of the full logit vector at 4 positions, and the
                   top-1/top-2 margin of every greedy step (near-ties can legitimately
                   flip between engines).
  perplexity.json  the first 4096 tokens of Debian's license texts and llama.cpp's
                   perplexity over them, evaluated in one context of 4096.
  perplexity_q8_0.json  llama.cpp's perplexity over the same tokens with q8_0 keys and
                   values (type_k = type_v = q8_0; llama.cpp needs flash attention for a
                   quantized V, so flash attention is on), and with f16 K and V under flash
                   attention for comparison; the tokens are named by their sha256 (the ids
                   written in decimal, joined by ","), not repeated.

How to run (from the repository root):

    scripts/setup.sh                     # the model, if not there yet
    scripts/oracle_env.sh && .venv-oracle/bin/python scripts/make_fixtures.py

Options: --profile smollm2|gemma3 (default smollm2), --model PATH, --out DIR, --threads N
(default 2), --only NAME[,NAME] (tokenize, greedy, perplexity, perplexity_q8_0, long),
--no-extra-buffers (llama.cpp's `use_extra_bufts = false`: no AMX or repacked weight buffers;
for machines that advertise AMX a virtual machine cannot run, where ggml's AMX code dies of
SIGILL; SmolLM2's Q4_1 weights are not repacked, so its numbers do not change).

Profile gemma3 (models/gemma-3-270m-Q4_K_M.gguf -> Tests/Fixtures/gemma3/): the same text set
plus Gemma's special and user-defined tokens (whitespace runs, HTML tags) and Gemma chat
turns; prompts and perplexity text start with BOS (the GGUF says add_bos = true); the
perplexity text is 8192 tokens (BOS + the first 8191 license-text tokens), evaluated in one
context of 8192 in batches of 512 with the NLL computed per batch (all logits at once would
take 8.6 GB); long.json holds the top logits after a 16384-token prompt (BOS + license text)
and 8 greedy tokens after it (llama.cpp's context 16400, batches of 512). The output is deterministic for a given llama.cpp build
and CPU (greedy decoding, fixed seed, floats rounded to 5 decimals); rerunning it
rewrites identical files.

Conventions in the files:
  * "position" is the index, in the full token sequence (prompt + generated), of the token
    whose output logits are recorded, i.e. those logits predict token position + 1.
  * logits are llama.cpp's raw float32 logits, rounded to 5 decimals in the JSON.
  * mean_nll is the mean over i in 0..<n_tokens-1 of -log softmax(logits_i)[token_{i+1}],
    computed in float64; perplexity = exp(mean_nll).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = 1234
LICENSE_DIR = "/usr/share/common-licenses"
LICENSE_FILES = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3",
                 "MPL-1.1", "Artistic", "CC0-1.0"]
LICENSE_SEPARATOR = "\n\n"
PPL_TOKENS = 4096

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user: str, system: str = SYSTEM) -> str:
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")


# (name, text, special)
TOKENIZE_CASES: list[tuple[str, str, bool]] = [
    ("english_sentence", "The quick brown fox jumps over the lazy dog.", False),
    ("english_prose",
     "In the beginning there was nothing but darkness. Then, slowly, a faint light "
     "appeared over the horizon \u2014 and everything changed. \"Why?\" she asked; nobody "
     "answered.", False),
    ("leading_space", " hello world", False),
    ("trailing_spaces", "hello world   ", False),
    ("multiple_spaces", "a  b   c    d     e      f", False),
    ("newlines_tabs", "line one\nline two\n\n\tindented\twith tabs\r\nwindows line\n\n\n", False),
    ("whitespace_only", "   \n\t  \n ", False),
    ("python_code",
     "def fib(n: int) -> int:\n    if n < 2:\n        return n\n"
     "    return fib(n - 1) + fib(n - 2)  # slow\n\nprint([fib(i) for i in range(10)])\n",
     False),
    ("swift_code",
     "struct Point: Equatable {\n    var x: Double, y: Double\n"
     "    func norm() -> Double { (x * x + y * y).squareRoot() }\n}\n"
     "let p = Point(x: 3, y: 4)\nprint(\"\\(p.norm())\")\n", False),
    ("c_code",
     "#include <stdio.h>\n\nint main(int argc, char **argv) {\n"
     "\tfor (int i = 0; i < argc; ++i) {\n\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n\t}\n"
     "\treturn 0;\n}\n", False),
    ("digits", "1234567890 12345678901234567890 007 42", False),
    ("decimals", "pi = 3.14159, e = 2.71828, x = -0.5e-10, total: 1,000,000.00 (99.9%)", False),
    ("contractions",
     "I don't think I'll go; it's late, we're tired and they've left. You'd've known. "
     "DON'T SHOUT, Y'all.", False),
    ("punctuation_runs",
     "Wait... what?!?! (yes) [no] {maybe} <tag/> --- *** ___ ~~~ @#$%^&* ''\"\" `` ;;; ::", False),
    ("emoji", "I love \U0001F355 and \U0001F389! \U0001F44D\U0001F3FD \u2764\ufe0f \U0001F600\U0001F600", False),
    ("emoji_zwj_flags",
     "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 "
     "\U0001F3F3\ufe0f\u200d\U0001F308 \U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8 "
     "\U0001F9D1\U0001F3FF\u200d\U0001F4BB", False),
    ("cjk", "你好，世界！日本語のテキストです。한국어 문장입니다.", False),
    ("arabic", "مرحبا بالعالم، كيف حالك اليوم؟", False),
    ("hindi", "नमस्ते दुनिया, आप कैसे हैं?", False),
    ("russian", "Привет, мир! Съешь же ещё этих мягких французских булок.", False),
    ("accented_latin", "Café crème, naïve façade, Ångström, São Paulo, Zürich, œuvre, ñandú, Łódź", False),
    ("rare_utf8",
     "\u00a0nbsp \u200bzwsp \ufeffbom \U0001D54F \U00010348 \ufffd e\u0301 \u0378x "
     "\U000E0041 \U0010FFFD \u2028\u2029 \x7f\x01", False),
    ("url_email", "Visit https://example.com/path?q=1&r=two#frag or mail me@test.org.", False),
    ("repeated_chars", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!!!!!!!!!!!!!!!!!!......\n\n\n\n\n\n", False),
    ("markdown", "# Title\n\n- item *one*\n- item **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", False),
    ("empty", "", False),
    ("single_space", " ", False),
    ("chat_tokens_as_text", "<|im_start|>user\nHi<|im_end|>\n", False),
    # bytes the vocabulary has no token for (0xF1/0xF2 lead bytes, 0x04): llama.cpp drops them
    ("bytes_without_tokens", "a\U0005D4D2b \x04c \U0008AB71", False),
    ("chat_special_short", "<|im_start|>user\nHi<|im_end|>\n", True),
    ("chat_special_full", chatml("What is 2+2?") + "2+2 = 4.<|im_end|>\n<|endoftext|>", True),
]

GREEDY_PROMPTS: list[tuple[str, str, bool]] = [
    ("capital_raw", "The capital of France is", False),
    ("story", "Once upon a time, in a small village,", False),
    ("python", "def fibonacci(n):\n", False),
    ("counting", "1, 2, 3, 4, 5,", False),
    ("list", "The following is a list of the largest cities in the world by population:\n\n1.", False),
    ("science", "Water boils at a temperature of", False),
    ("chat_capital", chatml("What is the capital of France?"), True),
    ("chat_haiku", chatml("Write a haiku about the ocean."), True),
]
GREEDY_TOKENS = 32

def gemma_chat(user: str) -> str:
    return f"<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n"


GEMMA_EXTRA_TOKENIZE_CASES: list[tuple[str, str, bool]] = [
    ("whitespace_runs", "\n\n  hello\n\n\n   world  \t\t\tx\t\t \n", False),
    ("html_tags", "<table><tr><td>1</td></tr></table> <div class=\"x\">y</div><br/>", False),
    ("special_texts_plain", "<start_of_turn>user\nHi<end_of_turn>\n<bos><eos><unused0><0x41>", False),
    ("gemma_chat_short", "<start_of_turn>user\nHi<end_of_turn>\n", True),
    ("gemma_chat_full", gemma_chat("What is 2+2?") + "2+2 = 4.<end_of_turn>\n<eos>", True),
    ("gemma_special_mixed", "a<start_of_turn> b <end_of_turn>c<unused5>", True),
]

GEMMA_GREEDY_PROMPTS: list[tuple[str, str, bool]] = [
    p for p in GREEDY_PROMPTS if not p[0].startswith("chat_")
] + [
    ("chat_capital", gemma_chat("What is the capital of France?"), True),
    ("chat_haiku", gemma_chat("Write a haiku about the ocean."), True),
]

PROFILES = {
    "smollm2": {"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "out": "smollm2", "bos": False,
                "tokenize": TOKENIZE_CASES, "greedy": GREEDY_PROMPTS, "ppl_tokens": 4096, "long_tokens": 0},
    "gemma3": {"model": "gemma-3-270m-Q4_K_M.gguf", "out": "gemma3", "bos": True,
               "tokenize": TOKENIZE_CASES + GEMMA_EXTRA_TOKENIZE_CASES, "greedy": GEMMA_GREEDY_PROMPTS,
               "ppl_tokens": 8192, "long_tokens": 16384},
}
LONG_GREEDY_TOKENS = 8
TOP_K = 10
# Generated-token indices (0-based) after which logits are recorded, besides the last
# prompt position. Position of "after generated token g" = len(prompt) + g.
TOP_AFTER_GENERATED = [1, 8, 31]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def r5(x: float) -> float:
    return float(round(float(x), 5))


def argmax_lowest(logits: np.ndarray) -> int:
    # np.argmax returns the first (lowest) index among equal maxima.
    return int(np.argmax(logits))


def top_entry(logits: np.ndarray, position: int, **extra) -> dict:
    l64 = logits.astype(np.float64)
    # stable sort on -logit: ties keep the lower id first
    order = np.argsort(-logits, kind="stable")[:TOP_K]
    return {
        "position": position,
        **extra,
        "ids": [int(i) for i in order],
        "logits": [r5(logits[i]) for i in order],
        "logits_stats": {"max": r5(l64.max()), "mean": r5(l64.mean()), "std": r5(l64.std())},
    }


class Oracle:
    def __init__(self, model: str, n_ctx: int, threads: int, logits_all: bool = True, **context):
        """context: further llama.cpp context options (flash_attn, type_k, type_v)."""
        import llama_cpp
        self.llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=model, n_ctx=n_ctx, n_batch=512, n_threads=threads,
            n_threads_batch=threads, logits_all=logits_all, seed=SEED, verbose=False, **context)
        self.n_vocab = self.llm.n_vocab()

    def tokenize(self, text: str, special: bool, bos: bool = False) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def nll_streaming(self, ids: list[int], n_batch: int = 512) -> np.ndarray:
        """-log p(ids[i+1] | ids[:i+1]) for every i, from one context, batch by batch, without
        keeping more than one batch of logits (float64 log-sum-exp)."""
        lc, llm = self.llama_cpp, self.llm
        llm.reset()
        self._clear_kv()
        batch = lc.llama_batch_init(n_batch, 0, 1)
        out = []
        try:
            for start in range(0, len(ids), n_batch):
                chunk = ids[start:start + n_batch]
                batch.n_tokens = len(chunk)
                for i, t in enumerate(chunk):
                    batch.token[i] = t; batch.pos[i] = start + i; batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0; batch.logits[i] = 1
                if lc.llama_decode(llm.ctx, batch) != 0:
                    sys.exit("llama_decode failed")
                logits = np.ctypeslib.as_array(lc.llama_get_logits(llm.ctx), shape=(len(chunk), self.n_vocab)).astype(np.float64)
                for i in range(len(chunk)):
                    j = start + i
                    if j + 1 >= len(ids):
                        break
                    row = logits[i]
                    m = row.max()
                    out.append(m + np.log(np.exp(row - m).sum()) - row[ids[j + 1]])
        finally:
            lc.llama_batch_free(batch)
        return np.array(out)

    def last_logits_streaming(self, ids: list[int], n_batch: int = 512) -> np.ndarray:
        """Evaluates ids from an empty cache (only the last position's logits); returns them."""
        llm = self.llm
        llm.reset()
        self._clear_kv()
        llm.eval(ids)
        return self.last()

    def logits_of(self, tokens: list[int]) -> np.ndarray:
        """Evaluate `tokens` from an empty cache; returns the logits of every position."""
        llm = self.llm
        llm.reset()
        self._clear_kv()
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)], dtype=np.float32, copy=True)

    def _clear_kv(self):
        # reset() only rewinds n_tokens; eval() then removes the stale cells itself,
        # but clearing the memory makes every evaluation independent of the previous one.
        llm, lc = self.llm, self.llama_cpp
        if hasattr(lc, "llama_get_memory") and hasattr(lc, "llama_memory_clear"):
            lc.llama_memory_clear(lc.llama_get_memory(llm.ctx), True)
        elif hasattr(lc, "llama_kv_self_clear"):
            lc.llama_kv_self_clear(llm.ctx)
        elif hasattr(lc, "llama_kv_cache_clear"):
            lc.llama_kv_cache_clear(llm.ctx)

    def last(self) -> np.ndarray:
        """The logits of the last evaluated position (read from the context)."""
        ptr = self.llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.array(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)), dtype=np.float32, copy=True)

    def step(self, token: int) -> np.ndarray:
        """Evaluate one more token; returns its logits."""
        self.llm.eval([token])
        return self.last()


def disable_extra_buffers():
    """Makes every model load with use_extra_bufts = false (llama-cpp-python does not expose it)."""
    import llama_cpp
    import llama_cpp.llama as llama_module
    default = llama_cpp.llama_model_default_params

    def without_extra_buffers():
        params = default()
        params.use_extra_bufts = False
        return params
    llama_cpp.llama_model_default_params = without_extra_buffers
    llama_module.llama_cpp.llama_model_default_params = without_extra_buffers


def header(model: str, model_sha: str) -> dict:
    import llama_cpp
    return {
        "model": os.path.basename(model),
        "model_sha256": model_sha,
        "llama_cpp_python": llama_cpp.__version__,
        "generator": "scripts/make_fixtures.py",
    }


def make_tokenize(oracle: Oracle, hdr: dict, cases_in=TOKENIZE_CASES) -> dict:
    md = oracle.llm.metadata
    add_bos = md.get("tokenizer.ggml.add_bos_token", "false") == "true"
    cases = []
    for name, text, special in cases_in:
        ids = oracle.tokenize(text, special)
        decoded = oracle.llm.detokenize(ids, special=special) if ids else b""
        cases.append({"name": name, "text": text, "special": special, "ids": ids,
                      "roundtrip": decoded == text.encode("utf-8")})
    bos = oracle.tokenize("hello", False, bos=True)
    return {**hdr, "add_bos": add_bos, "hello_with_special": bos,
            "add_bos_note": "ids never include BOS; add_bos is the GGUF's tokenizer.ggml.add_bos_token",
            "cases": cases}


def make_greedy(oracle: Oracle, hdr: dict, prompts=GREEDY_PROMPTS, bos: bool = False) -> dict:
    out = []
    for name, prompt, special in prompts:
        ids = oracle.tokenize(prompt, special, bos=bos)
        n = len(ids)
        all_logits = oracle.logits_of(ids)
        logits = all_logits[-1]
        tops = [top_entry(logits, n - 1, after="prompt")]
        generated, margins = [], []
        for g in range(GREEDY_TOKENS):
            tok = argmax_lowest(logits)
            srt = np.sort(logits)
            margins.append(r5(float(srt[-1]) - float(srt[-2])))
            generated.append(tok)
            if g == GREEDY_TOKENS - 1 and g not in TOP_AFTER_GENERATED:
                break  # the last token's own logits are not needed
            logits = oracle.step(tok)
            if g in TOP_AFTER_GENERATED:
                tops.append(top_entry(logits, n + g, after=f"generated[{g}]"))
        out.append({
            "name": name, "prompt": prompt, "special": special, "prompt_ids": ids,
            "generated_ids": generated,
            "generated_text": oracle.llm.detokenize(generated).decode("utf-8", "replace"),
            "greedy_margins": margins,
            "top_logits": tops,
        })
    return {**hdr,
            "n_generated": GREEDY_TOKENS, "top_k": TOP_K,
            "bos": bos,
            "notes": ("greedy = argmax of logits, ties -> lowest id; prompt evaluated as one batch, "
                      "then one token per step. top_logits[].position = index in prompt+generated "
                      "of the token whose logits are given; greedy_margins[g] = top1 - top2 logit "
                      "when choosing generated_ids[g]."),
            "prompts": out}


def license_text(separator: str) -> tuple[str, list[str]]:
    parts = []
    for name in LICENSE_FILES:
        with open(os.path.join(LICENSE_DIR, name), "rb") as f:
            parts.append(f.read().decode("utf-8"))
    return separator.join(parts), LICENSE_FILES


def perplexity_ids(oracle: Oracle, separator: str, n_tokens: int, bos: bool) -> tuple[list[int], list[int], list[str]]:
    """The perplexity text's first n_tokens ids (BOS first if bos), all its ids, and its files."""
    text, files = license_text(separator)
    all_ids = oracle.tokenize(text, False)
    ids = ([oracle.llm.token_bos()] if bos else []) + all_ids[:n_tokens - (1 if bos else 0)]
    if len(ids) < n_tokens:
        sys.exit(f"license text has only {len(ids)} tokens")
    return ids, all_ids, files


def token_nll(oracle: Oracle, ids: list[int], bos: bool) -> np.ndarray:
    """-log p(ids[i+1] | ids[:i+1]) for every i, in one context (float64)."""
    if bos:
        return oracle.nll_streaming(ids)
    logits = oracle.logits_of(ids).astype(np.float64)
    m = logits[:-1].max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(logits[:-1] - m).sum(axis=1)))
    return lse - logits[np.arange(len(ids) - 1), ids[1:]]


def make_perplexity(oracle: Oracle, hdr: dict, separator: str, n_tokens: int = PPL_TOKENS, bos: bool = False) -> dict:
    PPL_TOKENS = n_tokens
    text, _ = license_text(separator)
    ids, all_ids, files = perplexity_ids(oracle, separator, n_tokens, bos)
    nll = token_nll(oracle, ids, bos)
    mean_nll = float(nll.mean())
    # where the 4096 tokens end in the text (how many files they cover)
    prefix_bytes = len(oracle.llm.detokenize(ids))
    return {**hdr,
            "files": [os.path.join(LICENSE_DIR, f) for f in files],
            "separator": separator,
            "text_bytes": len(text.encode("utf-8")),
            "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "n_tokens_full_text": len(all_ids),
            "n_tokens": PPL_TOKENS,
            "n_ctx": PPL_TOKENS,
            "n_batch": 512,
            "bytes_covered": prefix_bytes,
            "token_ids": ids,
            "mean_nll": round(mean_nll, 6),
            "perplexity": round(math.exp(mean_nll), 4),
            "bos": bos,
            "nll_first_last_chunks": {
                "mean_nll_0_1023": round(float(nll[:1023].mean()), 6),
                "mean_nll_3072_4094": round(float(nll[3072:4095].mean()), 6),
            },
            "mean_nll_per_1024": [round(float(nll[i:i + 1024].mean()), 6) for i in range(0, len(nll), 1024)]}


def make_perplexity_q8_0(model: str, threads: int, hdr: dict, separator: str, n_tokens: int, bos: bool) -> dict:
    """Perplexity with q8_0 K and V (flash attention, as llama.cpp requires for a quantized V), and
    with f16 K and V under flash attention, over perplexity.json's tokens."""
    import llama_cpp
    results = {}
    for name, types in (("q8_0", {"type_k": llama_cpp.GGML_TYPE_Q8_0, "type_v": llama_cpp.GGML_TYPE_Q8_0}), ("f16", {})):
        oracle = Oracle(model, n_ctx=n_tokens, threads=threads, logits_all=not bos, flash_attn=True, **types)
        ids, _, _ = perplexity_ids(oracle, separator, n_tokens, bos)
        nll = token_nll(oracle, ids, bos)
        results[name] = (ids, float(nll.mean()))
        del oracle
    ids, mean_nll = results["q8_0"]
    return {**hdr,
            "n_tokens": n_tokens,
            "token_ids_sha256": hashlib.sha256(",".join(map(str, ids)).encode("utf-8")).hexdigest(),
            "bos": bos,
            "type_k": "q8_0",
            "type_v": "q8_0",
            "flash_attn": True,
            "mean_nll": round(mean_nll, 6),
            "perplexity": round(math.exp(mean_nll), 4),
            "perplexity_f16_flash_attn": round(math.exp(results["f16"][1]), 4),
            "notes": "llama.cpp's CPU flash attention converts the query to the key type's vec_dot type (q8_0) "
                     "and accumulates dequantized q8_0 values in f32; the tokens are perplexity.json's."}


def make_long(oracle: Oracle, hdr: dict, separator: str, n_tokens: int) -> dict:
    """Top logits after a long prompt (BOS + license text) and a few greedy tokens after it."""
    text, files = license_text(separator)
    ids = [oracle.llm.token_bos()] + oracle.tokenize(text, False)[:n_tokens - 1]
    if len(ids) < n_tokens:
        sys.exit(f"license text has only {len(ids)} tokens")
    logits = oracle.last_logits_streaming(ids)
    tops = [top_entry(logits, n_tokens - 1, after="prompt")]
    generated, margins = [], []
    for g in range(LONG_GREEDY_TOKENS):
        tok = argmax_lowest(logits)
        srt = np.sort(logits)
        margins.append(r5(float(srt[-1]) - float(srt[-2])))
        generated.append(tok)
        if g == LONG_GREEDY_TOKENS - 1:
            break
        logits = oracle.step(tok)
        tops.append(top_entry(logits, n_tokens + g, after=f"generated[{g}]"))
    return {**hdr, "files": [os.path.join(LICENSE_DIR, f) for f in files], "separator": separator,
            "n_tokens": n_tokens, "token_ids": ids, "generated_ids": generated, "greedy_margins": margins,
            "top_logits": tops,
            "notes": "prompt = BOS + the first n_tokens - 1 license-text tokens, evaluated in batches of 512 "
                     "(llama.cpp context n_tokens + 16); then one token per step."}


def write_json(path: str, obj: dict):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {os.path.relpath(path, REPO_ROOT)} ({os.path.getsize(path)} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="smollm2")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="tokenize,greedy,perplexity,perplexity_q8_0,long")
    ap.add_argument("--no-extra-buffers", action="store_true",
                    help="load models with use_extra_bufts = false (no AMX: for VMs where ggml's AMX code dies of SIGILL)")
    ap.add_argument("--separator", default=LICENSE_SEPARATOR,
                    help="join of the license files (python escapes allowed, default '\\n\\n')")
    args = ap.parse_args()
    profile = PROFILES[args.profile]
    model = args.model or os.path.join(REPO_ROOT, "models", profile["model"])
    out_dir = args.out or os.path.join(REPO_ROOT, "Tests", "Fixtures", profile["out"])
    separator = args.separator.encode("utf-8").decode("unicode_escape")
    which = set(args.only.split(","))
    if not os.path.exists(model):
        sys.exit(f"model not found: {model} (run scripts/setup.sh{' gemma' if args.profile == 'gemma3' else ''})")
    os.makedirs(out_dir, exist_ok=True)
    if args.no_extra_buffers:
        disable_extra_buffers()
    hdr = header(model, sha256_file(model))
    bos = profile["bos"]
    t0 = time.time()
    if which & {"tokenize", "greedy", "perplexity"}:
        # All logits are kept only for SmolLM2's small vocabulary; Gemma's perplexity streams.
        oracle = Oracle(model, n_ctx=profile["ppl_tokens"], threads=args.threads, logits_all=not bos)
        if "tokenize" in which:
            write_json(os.path.join(out_dir, "tokenize.json"), make_tokenize(oracle, hdr, profile["tokenize"]))
        if "greedy" in which:
            if bos:  # greedy needs every prompt position's logits
                oracle = Oracle(model, n_ctx=512, threads=args.threads, logits_all=True)
            write_json(os.path.join(out_dir, "greedy.json"), make_greedy(oracle, hdr, profile["greedy"], bos=bos))
        if "perplexity" in which:
            if bos:
                oracle = Oracle(model, n_ctx=profile["ppl_tokens"], threads=args.threads, logits_all=False)
            res = make_perplexity(oracle, hdr, separator, n_tokens=profile["ppl_tokens"], bos=bos)
            write_json(os.path.join(out_dir, "perplexity.json"), res)
            print(f"perplexity {res['perplexity']} (mean NLL {res['mean_nll']}) over {res['n_tokens']} tokens; "
                  f"full text {res['n_tokens_full_text']} tokens")
        del oracle
    if "perplexity_q8_0" in which:
        res = make_perplexity_q8_0(model, args.threads, hdr, separator, profile["ppl_tokens"], bos)
        write_json(os.path.join(out_dir, "perplexity_q8_0.json"), res)
        print(f"perplexity with q8_0 K and V (flash attention) {res['perplexity']}, "
              f"f16 K and V (flash attention) {res['perplexity_f16_flash_attn']}")
    if "long" in which and profile["long_tokens"]:
        n = profile["long_tokens"]
        oracle = Oracle(model, n_ctx=n + 16, threads=args.threads, logits_all=False)
        write_json(os.path.join(out_dir, "long.json"), make_long(oracle, hdr, separator, n))
    print(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
