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
    args = p.parse_args()

    # One request's reservation: (budget + chunk) entries per layer, capped at its sequence,
    # at the model's KV bytes per token (all layers).
    per_token = kv_bytes_per_token(args.binary)
    reservation = min(args.budget + 256, args.prompt_tokens + args.max_tokens + 16) * per_token
    pool = args.fit * reservation + reservation // 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [args.binary, "serve", "--port", str(port), "--policy", args.policy, "--budget", str(args.budget),
           "--kv-pool-bytes", str(pool), "--max-queue", str(args.max_queue), "--max-active", str(args.fit + 2),
           "--threads", str(args.threads), "--shutdown-grace", "5"]
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
