#!/usr/bin/env python3
# IndexMem — load test of `indexmem serve` on loopback. Apache-2.0.
#
# Starts the server with a KV pool that fits --fit requests at once, fires --clients
# concurrent requests with --prompt-tokens-token prompts (Debian's license texts, a different
# slice per client) in --waves waves, samples /metrics and the server's resident memory
# while they run, and reports: how many completed, how many got a clean 503 (with
# Retry-After), throughput, the most KV bytes reserved / held against the pool, and resident
# memory at the end of each wave (flat = no growth from wave to wave).
#
#   swift build -c release
#   python3 scripts/load_test.py                       # 16 clients, 2K prompts, budget 256, pool of 4
#   python3 scripts/load_test.py --json out.json --waves 3
#   python3 scripts/load_test.py --scenario batching   # continuous batching (below)
#
# --scenario batching measures what continuous batching is for, in one server run: one lone
# streaming request (short prompt, --gen tokens) and its decode rate; then --clients (default
# 8) concurrent streaming clients of the same shape and their aggregate generated tokens/s
# (ratio to the lone rate); then the time to first token of a short request sent while
# --long-clients requests with --prompt-tokens prompts are being read (--ttft-repeats times).
#
# Only the Python standard library; traffic goes to 127.0.0.1 only, bounded in count
# (clients x waves requests) and time (--timeout seconds in all).

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LICENSES = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "Artistic"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(base, path, body, timeout):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metrics(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def corpus():
    text = []
    for name in LICENSES:
        path = f"/usr/share/common-licenses/{name}"
        if os.path.exists(path):
            text.append(open(path, encoding="utf-8", errors="replace").read())
    if not text:
        text = [" ".join(f"Sentence number {i} talks about apples, rivers and the number {i * 7}." for i in range(4000))]
    return "\n\n".join(text)


def kv_bytes_per_token(binary):
    """KV bytes one token takes over all layers, as `indexmem info --json` reports it for the
    model `serve` loads (the same default: $INDEXMEM_MODEL, else the repository's)."""
    out = subprocess.run([binary, "info", "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["kv_bytes_per_token"]


def make_prompts(base, n, tokens):
    """n prompts of about `tokens` tokens each (checked with /tokenize), different slices."""
    text = corpus()
    status, _, body = post(base, "/tokenize", {"content": text[:200000]}, 120)
    ids = json.loads(body)["tokens"]
    chars_per_token = min(len(text), 200000) / max(1, len(ids))
    prompts = []
    span = int(tokens * chars_per_token)
    for i in range(n):
        start = (i * 7919) % max(1, len(text) - span - 1)
        chunk = text[start:start + span]
        # Trim to the token count.
        for _ in range(6):
            count = len(json.loads(post(base, "/tokenize", {"content": chunk}, 60)[2])["tokens"])
            if abs(count - tokens) <= tokens // 50:
                break
            chunk = text[start:start + int(len(chunk) * tokens / count)]
        prompts.append(chunk + "\n\nSummarise the text above in one sentence.")
    return prompts


def stream(base, body, timeout):
    """A streaming completion: (seconds to the first text, seconds to the last, seconds in all,
    completion tokens). Times from the moment the request is sent."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    first = last = None
    tokens = 0
    with urllib.request.urlopen(req, timeout=timeout) as r:
        for raw in r:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            o = json.loads(line[6:])
            if o.get("usage"):
                tokens = o["usage"]["completion_tokens"]
            if any(c.get("text") for c in o.get("choices", [])):
                now = time.time()
                first = first or now
                last = now
    end = time.time()
    return ((first or end) - t0, (last or end) - t0, end - t0, tokens)


def batching_scenario(args, base, server):
    """Lone decode rate, aggregate rate of concurrent clients, and time to first token under long prompts."""
    short = "Write a long story about a lighthouse keeper and her cat."
    body = {"prompt": short, "max_tokens": args.gen, "temperature": 0, "ignore_eos": True}
    stream(base, dict(body, max_tokens=4), 120)  # warm-up
    lone = []
    for _ in range(2):
        first, last, total, tokens = stream(base, body, 600)
        lone.append({"tokens": tokens, "decode_tokens_per_second": (tokens - 1) / max(1e-9, last - first),
                     "tokens_per_second": tokens / total, "ttft": first})
    lone_rate = max(r["decode_tokens_per_second"] for r in lone)
    print(json.dumps({"lone": lone}), flush=True)

    results = [None] * args.clients

    def client(i):
        results[i] = stream(base, dict(body, prompt=f"{short} Story number {i}."), 900)

    m0 = metrics(base)
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    m1 = metrics(base)
    generated = sum(r[3] for r in results)
    steps = m1.get("indexmem_batch_steps_total", 0) - m0.get("indexmem_batch_steps_total", 0)
    sequences = m1.get("indexmem_batch_sequences_total", 0) - m0.get("indexmem_batch_sequences_total", 0)
    concurrent = {"clients": args.clients, "generated_tokens": generated, "wall_seconds": round(wall, 2),
                  "aggregate_tokens_per_second": round(generated / wall, 2),
                  "ratio_to_lone_decode": round(generated / wall / lone_rate, 2),
                  "ttft_max": round(max(r[0] for r in results), 2),
                  "mean_batch": round(sequences / max(1, steps), 2)}
    print(json.dumps({"concurrent": concurrent}), flush=True)

    prompts = make_prompts(base, args.long_clients, args.prompt_tokens)
    ttfts = []
    for _ in range(args.ttft_repeats):
        long_threads = [threading.Thread(target=post, args=(base, "/v1/completions",
                                                            {"prompt": q, "max_tokens": 8, "temperature": 0}, 900))
                        for q in prompts]
        for t in long_threads:
            t.start()
        # Until the long prompts are being read.
        for _ in range(200):
            if metrics(base).get("indexmem_requests_active", 0) >= args.long_clients:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        first, _, _, _ = stream(base, {"prompt": "Say hello.", "max_tokens": 4, "temperature": 0}, 600)
        ttfts.append(round(first, 3))
        for t in long_threads:
            t.join()
    under_load = {"long_clients": args.long_clients, "long_prompt_tokens": args.prompt_tokens, "ttft_seconds": ttfts,
                  "ttft_max": max(ttfts)}
    print(json.dumps({"ttft_under_long_prompts": under_load}), flush=True)
    summary = {"scenario": "batching", "gen": args.gen, "max_batch_tokens": args.max_batch_tokens,
               "lone_decode_tokens_per_second": round(lone_rate, 2), "concurrent": concurrent, "ttft_under_long_prompts": under_load,
               "aggregate_at_least_4x_lone": concurrent["ratio_to_lone_decode"] >= 4, "ttft_under_2s": under_load["ttft_max"] < 2}
    print(json.dumps(summary, indent=1), flush=True)
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, ".build/release/indexmem"))
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--waves", type=int, default=2)
    p.add_argument("--prompt-tokens", type=int, default=2048)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--policy", default="snapkv")
    p.add_argument("--budget", type=int, default=256)
    p.add_argument("--fit", type=int, default=4, help="requests the pool fits at once")
    p.add_argument("--max-queue", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1500, help="seconds for the whole run")
    p.add_argument("--json", help="write the summary here")
    p.add_argument("--scenario", choices=["pool", "batching"], default="pool")
    p.add_argument("--gen", type=int, default=128, help="batching: tokens each streaming client generates")
    p.add_argument("--long-clients", type=int, default=2, help="batching: long prompts read while the short request waits")
    p.add_argument("--ttft-repeats", type=int, default=3)
    p.add_argument("--max-batch-tokens", type=int, default=256)
    args = p.parse_args()
    if args.scenario == "batching" and "--clients" not in sys.argv:
        args.clients = 8

    # One request's reservation: (budget + chunk) entries per layer, capped at its sequence,
    # at the model's KV bytes per token (all layers).
    per_token = kv_bytes_per_token(args.binary)
    reservation = min(args.budget + 256, args.prompt_tokens + args.max_tokens + 16) * per_token
    pool = args.fit * reservation + reservation // 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [args.binary, "serve", "--port", str(port), "--policy", args.policy, "--budget", str(args.budget),
           "--kv-pool-bytes", str(pool), "--max-queue", str(args.max_queue), "--max-active", str(args.fit + 2),
           "--threads", str(args.threads), "--shutdown-grace", "5", "--max-batch-tokens", str(args.max_batch_tokens)]
    if args.scenario == "batching":
        # Every client runs at once: the pool and the active slots are not what is measured.
        pool = 4 * pool
        cmd[cmd.index("--kv-pool-bytes") + 1] = str(pool)
        cmd[cmd.index("--max-active") + 1] = str(args.clients + args.long_clients + 2)
    log = open(os.path.join(ROOT, ".build", "load_test_server.log"), "w")
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + args.timeout
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"the server exited: see {log.name}")
                time.sleep(0.1)
        if args.scenario == "batching":
            summary = batching_scenario(args, base, server)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(summary, f, indent=1)
            server.terminate()
            code = server.wait(timeout=60)
            print(f"server exited with {code} after SIGTERM", flush=True)
            sys.exit(0 if code == 0 else 1)
        prompts = make_prompts(base, args.clients, args.prompt_tokens)
        print(f"server pid {server.pid}, pool {pool} bytes ({pool / 2**20:.1f} MiB, fits {args.fit} of {reservation} bytes), "
              f"{args.clients} clients x {args.waves} waves, prompts ~{args.prompt_tokens} tokens, max_tokens {args.max_tokens}",
              flush=True)
        # Warm-up: one request, so first-use allocations are not counted as growth.
        post(base, "/v1/completions", {"prompt": prompts[0][:2000], "max_tokens": 4, "temperature": 0}, 300)
        rss_start = rss_of(server.pid)

        samples, stop = [], threading.Event()

        def sampler():
            while not stop.is_set():
                try:
                    m = metrics(base)
                    samples.append((time.time(), m.get("indexmem_kv_bytes_reserved", 0), m.get("indexmem_kv_bytes_in_use", 0),
                                    m.get("indexmem_queue_length", 0), m.get("indexmem_requests_active", 0), rss_of(server.pid)))
                except OSError:
                    pass
                stop.wait(0.25)

        sampler_thread = threading.Thread(target=sampler, daemon=True)
        sampler_thread.start()
        waves = []
        for wave in range(args.waves):
            results = [None] * args.clients

            def client(i):
                body = {"prompt": prompts[i], "max_tokens": args.max_tokens, "temperature": 0, "ignore_eos": True}
                t0 = time.time()
                left = max(10, deadline - t0)
                try:
                    status, headers, raw = post(base, "/v1/completions", body, left)
                except OSError as e:
                    results[i] = {"status": -1, "error": repr(e), "seconds": time.time() - t0}
                    return
                r = {"status": status, "seconds": time.time() - t0}
                try:
                    o = json.loads(raw)
                except ValueError:
                    o = {}
                if status == 200:
                    r["completion_tokens"] = o["usage"]["completion_tokens"]
                    r["prompt_tokens"] = o["usage"]["prompt_tokens"]
                    r["kv_bytes_peak"] = o["kv_cache"]["kv_bytes_peak"]
                    r["queue_seconds"] = o["timings"]["queue_seconds"]
                else:
                    r["retry_after"] = headers.get("Retry-After")
                    r["error"] = o.get("error", {}).get("code") if isinstance(o.get("error"), dict) else raw[:200].decode("utf-8", "replace")
                results[i] = r

            t0 = time.time()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=max(1, deadline - time.time()))
            wall = time.time() - t0
            done = [r for r in results if r and r["status"] == 200]
            busy = [r for r in results if r and r["status"] == 503]
            other = [r for r in results if not r or r["status"] not in (200, 503)]
            gen = sum(r["completion_tokens"] for r in done)
            pre = sum(r["prompt_tokens"] for r in done)
            w = {"wave": wave + 1, "completed": len(done), "rejected_503": len(busy), "other": len(other),
                 "clean_503": all(r.get("retry_after") and r.get("error") == "queue_full" for r in busy),
                 "wall_seconds": round(wall, 2), "generated_tokens": gen, "prompt_tokens": pre,
                 "generated_tokens_per_second": round(gen / wall, 2), "prompt_tokens_per_second": round(pre / wall, 1),
                 "request_seconds_max": round(max((r["seconds"] for r in done), default=0), 2),
                 "queue_seconds_max": round(max((r["queue_seconds"] for r in done), default=0), 2),
                 "kv_bytes_peak_max": max((r["kv_bytes_peak"] for r in done), default=0),
                 "rss_end": rss_of(server.pid), "others": other[:3]}
            waves.append(w)
            print(json.dumps(w), flush=True)
        stop.set()
        sampler_thread.join()
        m = metrics(base)
        summary = {
            "clients": args.clients, "waves": waves, "prompt_tokens": args.prompt_tokens, "max_tokens": args.max_tokens,
            "policy": args.policy, "budget": args.budget, "pool_bytes": pool, "reservation_bytes": reservation,
            "max_reserved_sampled": max((s[1] for s in samples), default=0),
            "max_in_use_sampled": max((s[2] for s in samples), default=0),
            "max_reserved_server": m.get("indexmem_kv_bytes_reserved_max"),
            "max_in_use_server": m.get("indexmem_kv_bytes_in_use_max"),
            "max_queue_sampled": max((s[3] for s in samples), default=0),
            "max_active_sampled": max((s[4] for s in samples), default=0),
            "metrics_samples": len(samples),
            "rss_start": rss_start, "rss_max": max((s[5] for s in samples), default=0),
            "rss_end_of_waves": [w["rss_end"] for w in waves],
        }
        summary["pool_never_exceeded"] = summary["max_reserved_server"] <= pool and summary["max_in_use_server"] <= pool
        summary["every_request_completed_or_clean_503"] = all(w["other"] == 0 and w["clean_503"] for w in waves)
        print(json.dumps({k: v for k, v in summary.items() if k != "waves"}, indent=1), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=1)
        ok = summary["pool_never_exceeded"] and summary["every_request_completed_or_clean_503"]
        # Graceful shutdown: SIGTERM, then the process must exit by itself.
        server.terminate()
        code = server.wait(timeout=60)
        print(f"server exited with {code} after SIGTERM", flush=True)
        sys.exit(0 if ok and code == 0 else 1)
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    main()
