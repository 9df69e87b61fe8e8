# IndexMem — server tests. Apache-2.0.
#
# The PyPI `openai` client drives a running `indexmem serve` (chat, completions, streaming,
# errors, extension fields, concurrent streams). Run by OpenAIClientTests.swift with the
# interpreter of .venv-test (scripts/test_env.sh):
#
#   .venv-test/bin/python Tests/IndexMemServerTests/openai_client_test.py --base-url http://127.0.0.1:PORT/v1
#
# Prints one line per check and closes with "N passed, N failed"; exits 1 on any failure.

import argparse
import sys
import threading
import traceback

import openai
from openai import OpenAI

results = []


def check(name):
    def wrap(fn):
        def run(client, model):
            try:
                fn(client, model)
                results.append((name, None))
                print(f"ok   {name}", flush=True)
            except Exception as e:  # noqa: BLE001 (report every failure, keep going)
                results.append((name, e))
                print(f"FAIL {name}: {e!r}", flush=True)
                traceback.print_exc()
        run.check_name = name
        return run
    return wrap


QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@check("models.list returns the served model")
def models(client, model):
    ids = [m.id for m in client.models.list().data]
    assert model in ids, ids


@check("chat.completions: template applied, answer, stop at end of turn, usage")
def chat(client, model):
    r = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=32, temperature=0)
    c = r.choices[0]
    assert c.message.role == "assistant"
    assert "Paris" in c.message.content, c.message.content
    assert c.finish_reason == "stop", c.finish_reason
    assert r.usage.prompt_tokens > 10 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")


@check("chat.completions streaming equals the non-streamed answer; include_usage chunk")
def chat_stream(client, model):
    full = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=32, temperature=0)
    text, finish, usage, roles = "", None, None, []
    stream = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=32, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == full.choices[0].message.content, (text, full.choices[0].message.content)
    assert finish == "stop" and roles == ["assistant"], (finish, roles)
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens


@check("completions, streamed and not, agree; max_tokens gives finish_reason length")
def completions(client, model):
    prompt = "The first five prime numbers are"
    r = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0)
    assert r.object == "text_completion"
    text = r.choices[0].text
    assert text and r.choices[0].finish_reason == "length", r
    assert r.usage.completion_tokens == 10
    streamed = "".join(ch.choices[0].text for ch in client.completions.create(
        model=model, prompt=prompt, max_tokens=10, temperature=0, stream=True) if ch.choices)
    assert streamed == text, (streamed, text)


@check("sampling fields: seed repeats, stop cuts")
def sampling(client, model):
    kw = dict(model=model, prompt="Once upon a time", max_tokens=16, temperature=1.0, top_p=0.9, seed=1234)
    a = client.completions.create(**kw).choices[0].text
    b = client.completions.create(**kw).choices[0].text
    assert a == b, (a, b)
    words = a.split()
    if len(words) > 2:
        stop = " " + words[2]
        cut = client.completions.create(stop=[stop], **kw).choices[0]
        assert stop not in cut.text and a.startswith(cut.text) and cut.finish_reason == "stop", (cut, a)


@check("per-request cache settings (extra_body kv_policy, kv_budget) are applied and reported")
def cache_fields(client, model):
    long_text = " ".join(f"Item {i} is a number." for i in range(120))
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": long_text + " What is item 3?"}],
                                       max_tokens=16, temperature=0,
                                       extra_body={"kv_policy": "snapkv", "kv_budget": 128})
    kv = r.model_extra["kv_cache"]
    assert kv["policy"].startswith("snapkv") and kv["budget"] == 128, kv
    assert kv["evictions"] > 0 and kv["kv_bytes_peak"] <= kv["kv_bytes_reserved"], kv


@check("errors: unknown model 404, bad max_tokens 400, prompt beyond the context (llama.cpp's shape)")
def errors(client, model):
    try:
        client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=4)
        raise AssertionError("no error for an unknown model")
    except openai.NotFoundError as e:
        assert e.body["code"] == "model_not_found", e.body
    try:
        client.chat.completions.create(model=model, messages=QUESTION, max_tokens=-3)
        raise AssertionError("no error for max_tokens -3")
    except openai.BadRequestError as e:
        assert e.body["param"] == "max_tokens", e.body
    try:
        client.completions.create(model=model, prompt=[42] * 9000, max_tokens=4)
        raise AssertionError("no error for a prompt beyond the context")
    except openai.BadRequestError as e:
        assert e.body["type"] == "exceed_context_size_error", e.body
        assert e.body["n_prompt_tokens"] == 9000 and e.body["n_ctx"] == 8192, e.body


@check("four concurrent streams all finish")
def concurrent(client, model):
    out, errs = {}, []

    def one(i):
        try:
            text = ""
            for ch in client.chat.completions.create(model=model, max_tokens=24, temperature=0, stream=True,
                                                     messages=[{"role": "user", "content": f"Say the number {i}."}]):
                for c in ch.choices:
                    text += c.delta.content or ""
            out[i] = text
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errs, errs
    assert len(out) == 4 and all(out.values()), out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", default="SmolLM2-135M-Instruct.Q4_1")
    args = p.parse_args()
    client = OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=600)
    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    for fn in (models, chat, chat_stream, completions, sampling, cache_fields, errors, concurrent):
        fn(client, args.model)
    failed = sum(1 for _, e in results if e is not None)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
