#!/usr/bin/env python3
"""Write tiny random-weight GGUF models of qwen2, qwen3, mistral and llama3 and llama.cpp's
outputs on them into Tests/Fixtures/tiny/<name>.json.

No real weights of these architectures are available here, so each architecture is tested
on a tiny model whose every byte is reproducible: the Swift tests rebuild the same GGUF from
the fixture (IndexMemTestSupport.TinyModel) and compare their outputs with llama.cpp's.

A fixture holds
  * "metadata": every GGUF key-value pair in file order, typed (the tokenizer included: a
    byte-level BPE vocabulary trained here on Debian's license texts for llama3/qwen2/qwen3,
    a SentencePiece vocabulary with byte fallback for mistral);
  * "tensors": name, ggml type, dimensions and a recipe (seed as a hex string) from which both sides generate the
    bytes with SplitMix64 (floats as exact multiples of powers of two, quantized blocks as
    random bytes whose f16 scale fields are overwritten with random f16 values in a range
    chosen per type; see `tensor_bytes`), plus the sha256 of the bytes;
  * "file_sha256": the sha256 of the whole file as gguf-py writes it (the Swift writer
    produces the same bytes);
  * "tokenize": token ids of a few texts (exercising the pre-tokenizer / SentencePiece);
  * "greedy": prompts with llama.cpp's 16 greedy tokens, the top-1/top-2 margins, and the
    top-10 logits at the prompt's end and after generated tokens 0, 7 and 15.

The architectures (llama.cpp `src/models/*.cpp`):
  qwen2    NEOX RoPE (base 1e6), Q/K/V biases, tied output, qwen2 pre-tokenizer, ChatML.
  qwen3    NEOX RoPE, per-head Q/K RMS norms, separate output matrix, qwen2 pre-tokenizer.
  mistral  llama architecture, adjacent-pair RoPE, SentencePiece vocabulary (add_space_prefix,
           BOS), [INST] template. (llama.cpp ignores llama.attention.sliding_window, so the
           fixture has none; the Swift tests check the window separately.)
  llama3   llama architecture, RoPE base 500000 with Llama 3.1 frequency factors
           (rope_freqs.weight, as convert_hf_to_gguf.py computes them), llama-bpe
           pre-tokenizer (ignore_merges), BOS <|begin_of_text|>.

Run (from the repository root):

    scripts/oracle_env.sh && .venv-oracle/bin/python scripts/make_tiny_fixtures.py [--only NAME,...]

Deterministic: rerunning writes identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from collections import Counter

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "Tests", "Fixtures", "tiny")
LICENSE_DIR = "/usr/share/common-licenses"
TRAIN_FILES = ["GPL-3", "Apache-2.0"]
MASK = (1 << 64) - 1
GREEDY_TOKENS = 16
TOP_K = 10
TOP_AFTER_GENERATED = [0, 7, 15]

# ---------------------------------------------------------------------------- random bytes


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def name_seed(seed: int, name: str) -> int:
    """FNV-1a 64 of the tensor name, xor the model seed."""
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h ^ seed


# ggml types: (block elements, block bytes, [(offset of an f16 scale field, low bits, high bits)])
TYPES = {
    "F32": (0, 1, 4, []),
    "F16": (1, 1, 2, []),
    "Q4_0": (2, 32, 18, [(0, 0x1C00, 0x1FFF)]),
    "Q4_1": (3, 32, 20, [(0, 0x1C00, 0x1FFF), (2, 0x9C00, 0x9FFF)]),
    "Q5_0": (6, 32, 22, [(0, 0x1800, 0x1BFF)]),
    "Q5_1": (7, 32, 24, [(0, 0x1800, 0x1BFF), (2, 0x9C00, 0x9FFF)]),
    "Q8_0": (8, 32, 34, [(0, 0x1000, 0x13FF)]),
    "Q4_K": (12, 256, 144, [(0, 0x0C00, 0x0FFF), (2, 0x0C00, 0x0FFF)]),
    "Q5_K": (13, 256, 176, [(0, 0x0800, 0x0BFF), (2, 0x0800, 0x0BFF)]),
    "Q6_K": (14, 256, 210, [(208, 0x0400, 0x07FF)]),
}


def tensor_bytes(recipe: dict, type_name: str, count: int) -> bytes:
    """The bytes of a tensor of `count` elements, as IndexMemTestSupport.TinyModel makes them.

    float recipes ("uniform", amplitude exponent e): value = (int(next() >> 40) - 2^23) * 2^-(23 + e),
      exact in float32, |value| < 2^-e; F16 rounds it to nearest even.
    "ones" recipe (norm weights): value = 1 + (next() >> 44) * 2^-27 (exact), in [1, 1.125).
    quantized types: the whole tensor is random bytes (8 per next(), little-endian), then every
      block's f16 scale fields get bits lo + next() % (hi - lo + 1) (see TYPES).
    """
    rng = SplitMix64(recipe["seed"])
    _, block, block_bytes, scales = TYPES[type_name]
    kind = recipe["kind"]
    if type_name in ("F32", "F16"):
        if kind == "ones":
            v = np.array([1 + (rng.next() >> 44) * 2.0 ** -27 for _ in range(count)], dtype=np.float32)
        else:
            e = recipe["exponent"]
            v = np.array([((rng.next() >> 40) - (1 << 23)) * 2.0 ** -(23 + e) for _ in range(count)], dtype=np.float32)
        return v.astype("<f4").tobytes() if type_name == "F32" else v.astype("<f2").tobytes()
    n = count // block * block_bytes
    raw = bytearray()
    while len(raw) < n:
        raw += rng.next().to_bytes(8, "little")
    raw = raw[:n]
    for b in range(count // block):
        for off, lo, hi in scales:
            bits = lo + rng.next() % (hi - lo + 1)
            raw[b * block_bytes + off:b * block_bytes + off + 2] = bits.to_bytes(2, "little")
    return bytes(raw)


# ---------------------------------------------------------------------------- vocabularies


def license_text() -> str:
    return "\n\n".join(open(os.path.join(LICENSE_DIR, f), encoding="utf-8").read() for f in TRAIN_FILES)


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_merges(words: Counter, n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair)."""
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        for w in words:
            s = seqs[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def bpe_vocab(specials: list[str], n_merges: int = 400) -> dict:
    """A GPT-2 byte-level vocabulary: 256 byte symbols, merged symbols, then special tokens."""
    b2u = bytes_to_unicode()
    text = license_text()
    words = Counter("".join(b2u[b] for b in w.encode()) for w in re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+", text))
    merges = train_merges(words, n_merges)
    tokens = [b2u[b] for b in range(256)]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
    types = [1] * len(tokens) + [3] * len(specials)
    tokens += specials
    return {"tokens": tokens, "types": types, "merges": [f"{a} {b}" for a, b in merges]}


def spm_vocab(n_merges: int = 400) -> dict:
    """A SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, characters, merged pieces
    (score = -merge rank, characters -1000 - rank of frequency)."""
    text = license_text().replace(" ", "\u2581")
    words = Counter(re.findall(r"\u2581?[^\u2581\s]+|\s", "\u2581" + text))
    merges = train_merges(words, n_merges)
    chars = sorted(Counter(text).items(), key=lambda kv: (-kv[1], kv[0]))
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    seen = set(tokens)
    for i, (c, _) in enumerate(chars):
        if c not in seen and c not in ("\n", "\t"):  # newlines and tabs go through byte fallback
            tokens.append(c); types.append(1); scores.append(-1000.0 - i); seen.add(c)
    for i, (a, b) in enumerate(merges):
        if a + b not in seen:
            tokens.append(a + b); types.append(1); scores.append(-float(i)); seen.add(a + b)
    return {"tokens": tokens, "types": types, "scores": scores}


# ---------------------------------------------------------------------------- models

D, FF, HEADS, KV_HEADS, HEAD_DIM, LAYERS, CTX = 256, 512, 4, 2, 64, 2, 4096

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
          " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
MISTRAL = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
           "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}")


def llama3_rope_factors(base: float, dim: int) -> list[float]:
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for rope_type llama3."""
    factor, low_freq_factor, high_freq_factor, old_context_len = 8.0, 1.0, 4.0, 8192
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            out.append(1)
        elif wavelen > low_freq_wavelen:
            out.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return [float(np.float32(x)) for x in out]


def spec(name: str) -> dict:
    """Metadata and tensors of one tiny model."""
    seed = {"qwen2": 0x51, "qwen3": 0x53, "mistral": 0x4D, "llama3": 0x13}[name]
    arch = {"qwen2": "qwen2", "qwen3": "qwen3", "mistral": "llama", "llama3": "llama"}[name]
    md: list[tuple[str, str, object]] = [("general.architecture", "string", arch), ("general.name", "string", f"tiny-{name}")]

    def a(k: str, t: str, v):
        md.append((f"{arch}.{k}", t, v))

    a("context_length", "uint32", CTX)
    a("embedding_length", "uint32", D)
    a("block_count", "uint32", LAYERS)
    a("feed_forward_length", "uint32", FF)
    a("attention.head_count", "uint32", HEADS)
    a("attention.head_count_kv", "uint32", KV_HEADS)
    a("rope.freq_base", "float32", {"qwen2": 1000000.0, "qwen3": 1000000.0, "mistral": 10000.0, "llama3": 500000.0}[name])
    a("attention.layer_norm_rms_epsilon", "float32", 1e-6 if name.startswith("qwen") else 1e-5)
    if name == "qwen3":
        a("attention.key_length", "uint32", HEAD_DIM)
        a("attention.value_length", "uint32", HEAD_DIM)
    if name in ("mistral", "llama3"):
        a("rope.dimension_count", "uint32", HEAD_DIM)
    # tokenizer
    if name == "mistral":
        v = spm_vocab()
        md += [("tokenizer.ggml.model", "string", "llama"), ("tokenizer.ggml.pre", "string", "default"),
               ("tokenizer.ggml.tokens", "array[string]", v["tokens"]),
               ("tokenizer.ggml.scores", "array[float32]", v["scores"]),
               ("tokenizer.ggml.token_type", "array[int32]", v["types"]),
               ("tokenizer.ggml.bos_token_id", "uint32", 1), ("tokenizer.ggml.eos_token_id", "uint32", 2),
               ("tokenizer.ggml.unknown_token_id", "uint32", 0),
               ("tokenizer.ggml.add_bos_token", "bool", True), ("tokenizer.ggml.add_eos_token", "bool", False),
               ("tokenizer.ggml.add_space_prefix", "bool", True),
               ("tokenizer.chat_template", "string", MISTRAL)]
    else:
        specials = (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
                    if name == "llama3" else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        v = bpe_vocab(specials)
        n = len(v["tokens"]) - len(specials)
        md += [("tokenizer.ggml.model", "string", "gpt2"),
               ("tokenizer.ggml.pre", "string", "llama-bpe" if name == "llama3" else "qwen2"),
               ("tokenizer.ggml.tokens", "array[string]", v["tokens"]),
               ("tokenizer.ggml.token_type", "array[int32]", v["types"]),
               ("tokenizer.ggml.merges", "array[string]", v["merges"])]
        if name == "llama3":
            md += [("tokenizer.ggml.bos_token_id", "uint32", n), ("tokenizer.ggml.eos_token_id", "uint32", n + 4),
                   ("tokenizer.ggml.add_bos_token", "bool", True), ("tokenizer.chat_template", "string", LLAMA3)]
        else:
            md += [("tokenizer.ggml.bos_token_id", "uint32", n), ("tokenizer.ggml.eos_token_id", "uint32", n + 2),
                   ("tokenizer.ggml.padding_token_id", "uint32", n), ("tokenizer.ggml.add_bos_token", "bool", False),
                   ("tokenizer.chat_template", "string", CHATML)]
    vocab = len(v["tokens"])

    # tensors: (name, type, dims in ggml order, recipe)
    types = {
        "qwen2":   {"embd": "Q8_0", "q": "Q8_0", "k": "Q8_0", "v": "Q8_0", "o": "Q4_0", "gate": "Q5_0", "up": "Q5_0", "down": "Q8_0", "out": None},
        "qwen3":   {"embd": "Q8_0", "q": "Q4_K", "k": "Q4_K", "v": "Q6_K", "o": "Q4_K", "gate": "Q4_K", "up": "Q4_K", "down": "Q6_K", "out": "Q6_K"},
        "mistral": {"embd": "Q4_1", "q": "Q4_1", "k": "Q4_1", "v": "Q5_1", "o": "Q5_K", "gate": "Q5_K", "up": "Q5_K", "down": "Q5_1", "out": "Q8_0"},
        "llama3":  {"embd": "F16", "q": "F16", "k": "F16", "v": "F32", "o": "Q8_0", "gate": "Q4_K", "up": "Q4_K", "down": "Q6_K", "out": "Q8_0"},
    }[name]
    tensors: list[tuple[str, str, list[int], dict]] = []

    def t(tname: str, ttype: str, dims: list[int], kind: str = "uniform", exponent: int = 4):
        recipe = {"kind": kind, "seed": name_seed(seed, tname)}
        if kind == "uniform":
            recipe["exponent"] = exponent
        tensors.append((tname, ttype, dims, recipe))

    t("token_embd.weight", types["embd"], [D, vocab])
    t("output_norm.weight", "F32", [D], "ones")
    if types["out"]:
        t("output.weight", types["out"], [D, vocab])
    if name == "llama3":
        tensors.append(("rope_freqs.weight", "F32", [HEAD_DIM // 2], {"kind": "values", "values": llama3_rope_factors(500000.0, HEAD_DIM)}))
    for i in range(LAYERS):
        p = f"blk.{i}."
        t(p + "attn_norm.weight", "F32", [D], "ones")
        t(p + "attn_q.weight", types["q"], [D, HEADS * HEAD_DIM])
        t(p + "attn_k.weight", types["k"], [D, KV_HEADS * HEAD_DIM])
        t(p + "attn_v.weight", types["v"], [D, KV_HEADS * HEAD_DIM])
        if name == "qwen2":
            t(p + "attn_q.bias", "F32", [HEADS * HEAD_DIM], exponent=2)
            t(p + "attn_k.bias", "F32", [KV_HEADS * HEAD_DIM], exponent=2)
            t(p + "attn_v.bias", "F32", [KV_HEADS * HEAD_DIM], exponent=2)
        if name == "qwen3":
            t(p + "attn_q_norm.weight", "F32", [HEAD_DIM], "ones")
            t(p + "attn_k_norm.weight", "F32", [HEAD_DIM], "ones")
        t(p + "attn_output.weight", types["o"], [HEADS * HEAD_DIM, D])
        t(p + "ffn_norm.weight", "F32", [D], "ones")
        t(p + "ffn_gate.weight", types["gate"], [D, FF])
        t(p + "ffn_up.weight", types["up"], [D, FF])
        t(p + "ffn_down.weight", types["down"], [FF, D])
    return {"name": name, "metadata": md, "tensors": tensors}


def data_of(tname: str, ttype: str, dims: list[int], recipe: dict) -> bytes:
    count = int(np.prod(dims))
    if recipe["kind"] == "values":
        return np.array(recipe["values"], dtype="<f4").tobytes()
    return tensor_bytes(recipe, ttype, count)


def write_gguf(s: dict, path: str):
    import gguf
    arch = s["metadata"][0][2]
    w = gguf.GGUFWriter(path, arch)
    for key, typ, val in s["metadata"][1:]:
        if typ == "string":
            w.add_string(key, val)
        elif typ == "uint32":
            w.add_uint32(key, val)
        elif typ == "float32":
            w.add_float32(key, val)
        elif typ == "bool":
            w.add_bool(key, val)
        elif typ == "array[string]":
            w.add_array(key, val)
        elif typ == "array[int32]":
            w.add_key_value(key, val, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
        elif typ == "array[float32]":
            w.add_key_value(key, val, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.FLOAT32)
        else:
            raise ValueError(typ)
    for tname, ttype, dims, recipe in s["tensors"]:
        data = np.frombuffer(data_of(tname, ttype, dims, recipe), dtype=np.uint8)
        qtype = gguf.GGMLQuantizationType[ttype]
        # gguf-py takes the shape of the raw bytes in numpy order (outermost first)
        _, block, block_bytes, _ = TYPES[ttype]
        byte_shape = list(reversed(dims))
        byte_shape[-1] = dims[0] // block * block_bytes
        w.add_tensor(tname, data, raw_shape=byte_shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------- oracle

TOKENIZE_TEXTS = [
    ("prose", "The quick brown fox jumps over the lazy dog. Licensed under the Apache License, Version 2.0!"),
    ("numbers", "1234567 89 3.14159 -42 1,000,000 x2 abc123def"),
    ("contractions", "I don't think I'll go; it's late, WE'RE tired, they've left."),
    ("whitespace", "  two spaces\n\nnewlines\t\ttabs   \n end  "),
    ("unicode", "Café naïve Zürich — “quotes” 你好 🙂"),
    ("code", "def f(x):\n    return x ** 2  # square\n"),
]


def r5(x) -> float:
    return float(round(float(x), 5))


def top_entry(logits: np.ndarray, position: int, after: str) -> dict:
    order = np.argsort(-logits, kind="stable")[:TOP_K]
    return {"position": position, "after": after, "ids": [int(i) for i in order], "logits": [r5(logits[i]) for i in order]}


def run_oracle(path: str, s: dict, threads: int) -> tuple[list, list]:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=threads, n_threads_batch=threads,
                          logits_all=True, seed=1234, verbose=False)
    tok = []
    for name, text in TOKENIZE_TEXTS:
        ids = list(llm.tokenize(text.encode(), add_bos=False, special=False))
        tok.append({"name": name, "text": text, "ids": ids,
                    "roundtrip": llm.detokenize(ids) == text.encode()})
    chat = {"qwen2": "<|im_start|>user\nWhat is a license?<|im_end|>\n<|im_start|>assistant\n",
            "qwen3": "<|im_start|>user\nWhat is a license?<|im_end|>\n<|im_start|>assistant\n",
            "mistral": "[INST] What is a license? [/INST]",
            "llama3": "<|start_header_id|>user<|end_header_id|>\n\nWhat is a license?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"}[s["name"]]
    prompts = [("short", "The license", False),
               ("long", "This License applies to any program or other work which contains a notice placed by the copyright holder", False),
               ("chat", chat, True)]
    add_bos = any(k == "tokenizer.ggml.add_bos_token" and v for k, _, v in s["metadata"])
    greedy = []
    n_vocab = llm.n_vocab()
    for pname, text, special in prompts:
        ids = list(llm.tokenize(text.encode(), add_bos=add_bos, special=special))
        llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        llm.eval(ids)
        logits = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
        tops = [top_entry(logits, len(ids) - 1, "prompt")]
        gen, margins = [], []
        for g in range(GREEDY_TOKENS):
            t = int(np.argmax(logits))
            srt = np.sort(logits)
            margins.append(r5(srt[-1] - srt[-2]))
            gen.append(t)
            if g == GREEDY_TOKENS - 1 and g not in TOP_AFTER_GENERATED:
                break
            llm.eval([t])
            logits = np.array(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,)), dtype=np.float32)
            if g in TOP_AFTER_GENERATED:
                tops.append(top_entry(logits, len(ids) + g, f"generated[{g}]"))
        greedy.append({"name": pname, "prompt": text, "special": special, "prompt_ids": ids, "generated_ids": gen,
                       "greedy_margins": margins, "top_logits": tops})
    return tok, greedy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="qwen2,qwen3,mistral,llama3")
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", default=None, help="also copy the GGUF files into this directory")
    args = ap.parse_args()
    import llama_cpp
    os.makedirs(args.out, exist_ok=True)
    for name in args.only.split(","):
        s = spec(name)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"tiny-{name}.gguf")
            write_gguf(s, path)
            blob = open(path, "rb").read()
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                open(os.path.join(args.keep, f"tiny-{name}.gguf"), "wb").write(blob)
            tok, greedy = run_oracle(path, s, args.threads)
        fixture = {
            "name": name, "llama_cpp_python": llama_cpp.__version__, "generator": "scripts/make_tiny_fixtures.py",
            "file_sha256": hashlib.sha256(blob).hexdigest(), "file_bytes": len(blob),
            "metadata": [{"key": k, "type": t, "value": v} for k, t, v in s["metadata"]],
            "tensors": [{"name": n, "type": ty, "dims": d, "recipe": {k: (f"0x{v:016x}" if k == "seed" else v) for k, v in r.items()},
                         "sha256": hashlib.sha256(data_of(n, ty, d, r)).hexdigest()} for n, ty, d, r in s["tensors"]],
            "tokenize": tok,
            "greedy": greedy,
            "notes": ("greedy = argmax (ties -> lowest id), prompt as one batch then one token per step; "
                      "top_logits[].position = index in prompt+generated of the token whose logits are given"),
        }
        out = os.path.join(args.out, f"{name}.json")
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            json.dump(fixture, f, ensure_ascii=False, indent=None, separators=(",", ":"))
            f.write("\n")
        os.replace(out + ".tmp", out)
        print(f"wrote {os.path.relpath(out, REPO_ROOT)} ({os.path.getsize(out)} bytes); greedy margins min "
              f"{min(min(g['greedy_margins']) for g in greedy)}")


if __name__ == "__main__":
    main()
