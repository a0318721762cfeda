#!/usr/bin/env python3
"""Makes gemma-3-270m-q4_k_m.json (same record layout as the other real/*.json: conversations[i].kv_f16/kv_f32): llama.cpp (llama-cpp-python==0.3.36, CPU, 2 threads, flash attention off)
logits of Gemma 3 270m Q4_K_M (sha256 a5fd3b62...6818) for Tests/ModelTests/Gemma3Tests.swift.

For each prompt: ids = llama_tokenize(text, add_special=True, parse_special=True); one llama_decode of the whole
prompt (n_ctx 2048, n_batch = n_ubatch = 1024), then 24 greedy steps (argmax of the raw logits, ties -> lowest id)
one token per llama_decode; per step the top-8 [id, logit] of the distribution that produced it. Runs with an F32
KV cache (`kv_f32`) and llama.cpp's default F16 cache (`kv_f16`). The `long` prompt is longer than the model's
512-token sliding window, so local layers mask old positions.
Usage: python3 make_gemma3_reference.py MODEL.gguf  (writes gemma-3-270m-q4_k_m.json next to this script)
"""
import json, os, sys
import numpy as np
import llama_cpp

MODEL = sys.argv[1]
PROMPTS = {
    "capital": "The capital of France is",
    "story": "Once upon a time, in a small village by the sea, there lived a",
    "code": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "long": " ".join(f"Item {i}: the {['red', 'green', 'blue', 'yellow'][i % 4]} box holds {i * 7 % 50} marbles."
                     for i in range(60)) + " Question: what colour is the box of item 2? Answer: the",
}

def run(kv_type):
    llm = llama_cpp.Llama(model_path=MODEL, n_ctx=2048, n_batch=1024, n_ubatch=1024, n_threads=2,
                          logits_all=True, verbose=False, flash_attn=False, type_k=kv_type, type_v=kv_type)
    out = {}
    for name, text in PROMPTS.items():
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.reset()
        llm.eval(ids)
        last = np.array(llm.scores[len(ids) - 1], dtype=np.float64)
        order = np.argsort(-last, kind="stable")[:64]
        rec = {"prompt": text, "prompt_ids": ids,
               "last_prompt_logits": {"top": [[int(i), float(last[i])] for i in order], "argmax": int(np.argmax(last))},
               "greedy": {"ids": [], "steps": []}}
        logits = last
        for _ in range(24):
            top = np.argsort(-logits, kind="stable")[:8]
            tok = int(np.argmax(logits))
            rec["greedy"]["steps"].append({"top": [[int(i), float(logits[i])] for i in top], "chosen": tok})
            rec["greedy"]["ids"].append(tok)
            if tok == llm.token_eos():
                break
            llm.eval([tok])
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        out[name] = rec
    return out

runs = {"kv_f32": run(0), "kv_f16": run(1)}
result = {"model": os.path.basename(MODEL), "llama_cpp_python": llama_cpp.__version__, "conversations": [
    {"id": name, "prompt": text, "prompt_ids": runs["kv_f32"][name]["prompt_ids"],
     "kv_f32": runs["kv_f32"][name], "kv_f16": runs["kv_f16"][name]} for name, text in PROMPTS.items()]}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gemma-3-270m-q4_k_m.json"), "w") as f:
    json.dump(result, f)
