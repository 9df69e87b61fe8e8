#!/usr/bin/env python3
"""Side-by-side speed and memory comparison of IndexMem and llama.cpp, in one run.

Same GGUF, same thread count, alternating engines, each measurement in a fresh child
process whose peak resident memory is read from os.wait4's rusage (ru_maxrss). Speeds on
the shared 2-core machines vary by up to 45 % between runs, so only the ratios of one run
mean anything.

  llama.cpp  a child Python process running llama-cpp-python (this script with
             --child-llamacpp): loads the model (n_ctx = prompt + gen, n_batch 512,
             n_threads = n_threads_batch = --threads), does a short warm-up (32 tokens,
             then clears the cache, like llama-bench), then times the prefill of N
             prompt tokens (the first N tokens of Debian's license texts, tokenized by
             llama.cpp, no BOS) and the greedy decode of --gen tokens one at a time
             (argmax of the logits; `gen` single-token evaluations). Prints one JSON
             object.
  IndexMem   `<bin> bench --model M --prompt-tokens N --gen G --threads T --json`
             (one process per prompt length), which prints one JSON object per prompt
             length with "timings" {prefill_seconds, decode_seconds,
             prefill_tokens_per_second, decode_tokens_per_second},
             "resident_bytes_peak" and "cache".

Each (engine, length) is measured --repeats times, alternating the engines (the order
flips every repeat); the best of the repeats is kept (highest tok/s, lowest peak RSS).
Ratios are IndexMem / llama.cpp (> 1 means IndexMem is faster for tok/s, and uses MORE
memory for RSS).

Usage (from the repository root):

    scripts/oracle_env.sh                      # llama-cpp-python in .venv-oracle
    swift build -c release
    .venv-oracle/bin/python scripts/compare_llamacpp.py [--prompt-tokens 512,2048]
        [--gen 64] [--threads 2] [--repeats 2] [--model PATH] [--indexmem-bin PATH]
        [--indexmem-args "--policy full"] [--only llamacpp|indexmem] [--json]

The script itself may run under any Python 3; the llama.cpp child runs under
--llama-python (default: this interpreter if it can import llama_cpp, else
$ORACLE_VENV/bin/python or .venv-oracle/bin/python).

Note: the llama.cpp child's peak RSS includes the Python interpreter, numpy and
llama-cpp-python (its "baseline_rss_bytes", measured before the model is loaded, is
reported too).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join("models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_BIN = os.path.join(".build", "release", "indexmem")
LICENSE_DIR = "/usr/share/common-licenses"
LICENSE_FILES = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3",
                 "MPL-1.1", "Artistic", "CC0-1.0"]
WARMUP_TOKENS = 32


def log(msg: str):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def resolve(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


# ---------------------------------------------------------------------------------------
# llama.cpp child
# ---------------------------------------------------------------------------------------

def vm_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def child_llamacpp(args) -> int:
    t_start = time.perf_counter()
    import numpy as np
    import llama_cpp
    baseline = vm_hwm_bytes()

    n_prompt, n_gen = args.prompt_tokens_child, args.gen
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model, n_ctx=n_prompt + n_gen, n_batch=512, n_ubatch=512,
        n_threads=args.threads, n_threads_batch=args.threads, logits_all=False,
        seed=1234, verbose=args.verbose)
    load_seconds = time.perf_counter() - t0
    n_vocab = llm.n_vocab()
    ctx = llm.ctx

    parts = []
    for name in LICENSE_FILES:
        with open(os.path.join(LICENSE_DIR, name), "rb") as f:
            parts.append(f.read().decode("utf-8"))
    ids = list(llm.tokenize("\n\n".join(parts).encode("utf-8"), add_bos=False, special=False))
    while len(ids) < n_prompt:  # ~40K tokens available; repeat for longer prompts
        ids = ids + ids
    prompt = ids[:n_prompt]

    def clear():
        llm.reset()
        if hasattr(llama_cpp, "llama_get_memory") and hasattr(llama_cpp, "llama_memory_clear"):
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        elif hasattr(llama_cpp, "llama_kv_self_clear"):
            llama_cpp.llama_kv_self_clear(ctx)
        else:
            llama_cpp.llama_kv_cache_clear(ctx)

    def last_logits():
        ptr = llama_cpp.llama_get_logits_ith(ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,))

    if args.warmup:
        llm.eval(prompt[:min(WARMUP_TOKENS, n_prompt)])
        llm.eval([int(np.argmax(last_logits()))])
        clear()

    t0 = time.perf_counter()
    llm.eval(prompt)
    logits = last_logits()
    prefill = time.perf_counter() - t0

    generated = []
    t0 = time.perf_counter()
    for _ in range(n_gen):
        tok = int(np.argmax(logits))
        generated.append(tok)
        llm.eval([tok])
        logits = last_logits()
    decode = time.perf_counter() - t0

    cp = llm.context_params
    settings = {}
    for key in ("flash_attn", "flash_attn_type", "type_k", "type_v", "n_ubatch", "offload_kqv"):
        if hasattr(cp, key):
            settings[key] = getattr(cp, key)
    out = {
        "engine": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "prompt_tokens": n_prompt,
        "gen_tokens": n_gen,
        "n_ctx": llm.n_ctx(),
        "threads": args.threads,
        "warmup": bool(args.warmup),
        "timings": {
            "prefill_seconds": prefill,
            "decode_seconds": decode,
            "prefill_tokens_per_second": n_prompt / prefill,
            "decode_tokens_per_second": n_gen / decode if n_gen else None,
        },
        "load_seconds": load_seconds,
        "baseline_rss_bytes": baseline,
        "resident_bytes_peak": vm_hwm_bytes(),
        "context_params": settings,
        "generated_ids_head": generated[:8],
        "child_seconds": time.perf_counter() - t_start,
    }
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------------------

def run_measured(cmd: list[str], timeout: float) -> dict:
    """Run cmd; return stdout, stderr, exit code, wall time and peak RSS (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    cwd=REPO_ROOT)
        except OSError as e:
            raise SystemExit(f"compare: error: cannot start {cmd[0]}: {e}")
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            proc.kill()
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)  # blocks; reaps the child, gives its rusage
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        if timed_out.is_set():
            raise SystemExit(f"compare: error: timeout after {timeout:.0f}s: {shlex.join(cmd)}")
        out.seek(0)
        err.seek(0)
        return {"returncode": proc.returncode, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace"), "wall_seconds": wall,
                "peak_rss_bytes": ru.ru_maxrss * 1024}


def parse_json_lines(text: str) -> list[dict]:
    objs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                objs.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    if not objs:  # maybe one pretty-printed object
        try:
            obj = json.loads(text)
            objs = obj if isinstance(obj, list) else [obj]
        except json.JSONDecodeError:
            pass
    return objs


def fail(what: str, cmd: list[str], res: dict):
    tail = "\n".join((res["stderr"] or res["stdout"]).strip().splitlines()[-15:])
    raise SystemExit(f"compare: error: {what} failed (exit {res['returncode']}): {shlex.join(cmd)}\n{tail}")


def measure_llamacpp(args, n: int) -> dict:
    cmd = [args.llama_python, os.path.abspath(__file__), "--child-llamacpp",
           "--model", args.model, "--prompt-tokens-child", str(n), "--gen", str(args.gen),
           "--threads", str(args.threads)]
    if not args.warmup:
        cmd.append("--no-warmup")
    res = run_measured(cmd, args.timeout)
    if res["returncode"] != 0:
        fail("llama.cpp child", cmd, res)
    objs = parse_json_lines(res["stdout"])
    if not objs:
        fail("llama.cpp child (no JSON output)", cmd, res)
    r = objs[-1]
    r["peak_rss_bytes"] = res["peak_rss_bytes"]
    r["wall_seconds"] = res["wall_seconds"]
    return r


def measure_indexmem(args, n: int) -> dict:
    cmd = [args.indexmem_bin, "bench", "--model", args.model, "--prompt-tokens", str(n),
           "--gen", str(args.gen), "--threads", str(args.threads), "--json"]
    cmd += shlex.split(args.indexmem_args)
    res = run_measured(cmd, args.timeout)
    if res["returncode"] != 0:
        fail("IndexMem bench", cmd, res)
    objs = [o for o in parse_json_lines(res["stdout"]) if isinstance(o, dict)]
    match = [o for o in objs if o.get("prompt_tokens") == n] or objs
    if not match or "timings" not in match[0]:
        fail("IndexMem bench (no JSON object with \"timings\" on stdout)", cmd, res)
    r = dict(match[0])
    t = r["timings"]
    for key in ("prefill_seconds", "decode_seconds", "prefill_tokens_per_second",
                "decode_tokens_per_second"):
        if key not in t:
            fail(f"IndexMem bench (timings lack {key!r})", cmd, res)
    r["engine"] = "indexmem"
    r["peak_rss_bytes"] = res["peak_rss_bytes"]
    r["wall_seconds"] = res["wall_seconds"]
    return r


def best(runs: list[dict]) -> dict | None:
    if not runs:
        return None

    def pick(key, f):
        vals = [r["timings"][key] for r in runs if r["timings"].get(key) is not None]
        return f(vals) if vals else None
    rss = [r["peak_rss_bytes"] for r in runs]
    self_rss = [r.get("resident_bytes_peak") for r in runs if r.get("resident_bytes_peak")]
    return {
        "prefill_tokens_per_second": pick("prefill_tokens_per_second", max),
        "decode_tokens_per_second": pick("decode_tokens_per_second", max),
        "prefill_seconds": pick("prefill_seconds", min),
        "decode_seconds": pick("decode_seconds", min),
        "peak_rss_bytes": min(rss),
        "self_reported_peak_bytes": min(self_rss) if self_rss else None,
        "repeats": len(runs),
    }


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


def markdown(summary: dict) -> str:
    rows = ["| prompt | llama.cpp prefill tok/s | IndexMem prefill tok/s | ratio "
            "| llama.cpp decode tok/s | IndexMem decode tok/s | ratio "
            "| llama.cpp peak RSS MiB | IndexMem peak RSS MiB | ratio |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    mib = 1024 * 1024
    for row in summary["results"]:
        lc, im = row["llamacpp"] or {}, row["indexmem"] or {}
        lr = lc.get("peak_rss_bytes")
        ir = im.get("peak_rss_bytes")
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            row["prompt_tokens"],
            fmt(lc.get("prefill_tokens_per_second")), fmt(im.get("prefill_tokens_per_second")),
            fmt(row["ratios"]["prefill"], 2),
            fmt(lc.get("decode_tokens_per_second")), fmt(im.get("decode_tokens_per_second")),
            fmt(row["ratios"]["decode"], 2),
            fmt(lr / mib if lr else None), fmt(ir / mib if ir else None),
            fmt(row["ratios"]["peak_rss"], 2)))
    c = summary["config"]
    rows.append("")
    rows.append(f"model `{os.path.basename(c['model'])}`, {c['threads']} threads, gen {c['gen']}, "
                f"best of {c['repeats']} alternating runs; ratio = IndexMem / llama.cpp "
                f"(llama-cpp-python {summary.get('llama_cpp_python') or '?'}; its RSS includes "
                f"the Python runtime, baseline {fmt(summary.get('llamacpp_baseline_rss_mib'))} MiB)")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description="IndexMem vs llama.cpp speed/RSS, side by side.",
                                 epilog="See the module docstring for details.")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--prompt-tokens", default="512,2048")
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--indexmem-bin", default=DEFAULT_BIN)
    ap.add_argument("--indexmem-args", default="",
                    help="extra arguments for `indexmem bench`, e.g. \"--policy full\"")
    ap.add_argument("--llama-python", default=None,
                    help="Python with llama_cpp for the llama.cpp child")
    ap.add_argument("--only", choices=["llamacpp", "indexmem"], default=None)
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="no warm-up in the llama.cpp child")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    ap.add_argument("--json", action="store_true", help="print the JSON summary instead of Markdown")
    ap.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    # child mode
    ap.add_argument("--child-llamacpp", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prompt-tokens-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    args.model = resolve(args.model)
    if args.child_llamacpp:
        sys.exit(child_llamacpp(args))

    try:
        lengths = [int(x) for x in args.prompt_tokens.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--prompt-tokens must be comma-separated integers, got {args.prompt_tokens!r}")
    if not lengths or min(lengths) < 1 or args.gen < 0 or args.repeats < 1:
        ap.error("need prompt lengths >= 1, --gen >= 0, --repeats >= 1")
    if not os.path.isfile(args.model):
        sys.exit(f"compare: error: model not found: {args.model} (run scripts/setup.sh)")

    engines = ["llamacpp", "indexmem"] if args.only is None else [args.only]
    if "indexmem" in engines:
        args.indexmem_bin = resolve(args.indexmem_bin)
        if not (os.path.isfile(args.indexmem_bin) and os.access(args.indexmem_bin, os.X_OK)):
            sys.exit(f"compare: error: IndexMem binary not found or not executable: "
                     f"{args.indexmem_bin}\n  build it with `swift build -c release`, pass "
                     f"--indexmem-bin PATH, or measure llama.cpp alone with --only llamacpp")
    if "llamacpp" in engines:
        if args.llama_python is None:
            candidates = [sys.executable,
                          os.path.join(os.environ.get("ORACLE_VENV", ""), "bin", "python"),
                          os.path.join(REPO_ROOT, ".venv-oracle", "bin", "python")]
            for py in candidates:
                if py and os.path.isfile(py) and subprocess.run(
                        [py, "-c", "import llama_cpp, numpy"], capture_output=True).returncode == 0:
                    args.llama_python = py
                    break
            else:
                sys.exit("compare: error: no Python with llama_cpp found; run scripts/oracle_env.sh "
                         "or pass --llama-python, or measure IndexMem alone with --only indexmem")

    runs: dict[tuple[str, int], list[dict]] = {(e, n): [] for e in engines for n in lengths}
    for rep in range(args.repeats):
        order = engines if rep % 2 == 0 else list(reversed(engines))
        for n in lengths:
            for e in order:
                log(f"repeat {rep + 1}/{args.repeats}: {e}, {n} prompt tokens, {args.gen} generated")
                r = measure_llamacpp(args, n) if e == "llamacpp" else measure_indexmem(args, n)
                t = r["timings"]
                log(f"  prefill {t['prefill_tokens_per_second']:.1f} tok/s, decode "
                    f"{fmt(t['decode_tokens_per_second'])} tok/s, peak RSS "
                    f"{r['peak_rss_bytes'] / 2**20:.1f} MiB")
                runs[(e, n)].append(r)

    results = []
    baseline = None
    version = None
    for n in lengths:
        lc = best(runs.get(("llamacpp", n), []))
        im = best(runs.get(("indexmem", n), []))
        for r in runs.get(("llamacpp", n), []):
            baseline = r.get("baseline_rss_bytes") or baseline
            version = r.get("llama_cpp_python") or version
        g = lambda d, k: (d or {}).get(k)
        results.append({
            "prompt_tokens": n, "llamacpp": lc, "indexmem": im,
            "ratios": {
                "prefill": ratio(g(im, "prefill_tokens_per_second"), g(lc, "prefill_tokens_per_second")),
                "decode": ratio(g(im, "decode_tokens_per_second"), g(lc, "decode_tokens_per_second")),
                "peak_rss": ratio(g(im, "peak_rss_bytes"), g(lc, "peak_rss_bytes")),
            }})
    summary = {
        "config": {"model": args.model, "threads": args.threads, "gen": args.gen,
                   "repeats": args.repeats, "prompt_tokens": lengths,
                   "indexmem_bin": args.indexmem_bin if "indexmem" in engines else None,
                   "indexmem_args": args.indexmem_args, "llama_python": args.llama_python,
                   "warmup": args.warmup},
        "llama_cpp_python": version,
        "llamacpp_baseline_rss_mib": baseline / 2**20 if baseline else None,
        "results": results,
        "runs": [{"engine": e, "prompt_tokens": n, **r}
                 for (e, n), rs in runs.items() for r in rs],
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(markdown(summary))


if __name__ == "__main__":
    main()
