#!/usr/bin/env python3
"""llama.cpp's pp/tg benchmark, timed exactly like its llama-bench tool, through the C API of the llama.cpp
library shipped in the `xllamacpp` wheel (the wheel's Python API has no benchmark; its shared object exports
llama.h, which is called here with ctypes).

Follows tools/llama-bench/llama-bench.cpp of the llama.cpp version inside xllamacpp==2026.10.11549:
  * one model per file, one context per test with n_ctx = n_prompt + n_gen, n_batch 2048, n_ubatch 512,
    K/V f16, flash attention auto; a ggml thread pool with poll 50 attached (llama-bench's defaults);
  * pp<P>: `test_prompt` — random token ids (BOS first when the vocab adds it), one llama_decode of P tokens,
    llama_synchronize; t/s = P / time;
  * tg<N>: `test_gen` — N llama_decode calls of one token each with llama_synchronize after each; t/s = N / time;
  * warm-up (a full pp run; one tg token), then R repetitions, the KV cache cleared before each;
  * -d D (llama-bench's --n-depth): before each repetition (and the warm-up), D random tokens are decoded
    untimed in n_batch pieces, so the test runs at context depth D (n_ctx = D + P + N), reported as "@ dD";
  * avg_ts / stddev_ts over the per-repetition t/s (sample standard deviation), as llama-bench.

Usage: bench_llamacpp.py -m FILE [-p 512] [-n 128] [-d 0] [-t 2] [-r 5] [-o json|md]
The ctypes struct layouts below are transcribed from that version's include/llama.h and ggml/include/ggml.h.
"""
import argparse
import ctypes as C
import json
import os
import random
import statistics
import sys
import time

import xllamacpp  # noqa: F401  (loads the shared object that carries the llama.cpp C API)

LIB = C.CDLL(os.path.join(os.path.dirname(xllamacpp.__file__), "xllamacpp.abi3.so"), mode=C.RTLD_GLOBAL)


class ModelParams(C.Structure):
    """struct llama_model_params (include/llama.h)."""
    _fields_ = [
        ("devices", C.c_void_p), ("tensor_buft_overrides", C.c_void_p), ("n_gpu_layers", C.c_int32),
        ("split_mode", C.c_int), ("load_mode", C.c_int), ("lazy_mode", C.c_int), ("main_gpu", C.c_int32),
        ("tensor_split", C.c_void_p), ("progress_callback", C.c_void_p), ("progress_callback_user_data", C.c_void_p),
        ("kv_overrides", C.c_void_p), ("vocab_only", C.c_bool), ("check_tensors", C.c_bool),
        ("use_extra_bufts", C.c_bool), ("no_host", C.c_bool), ("no_alloc", C.c_bool), ("load_mtp", C.c_bool),
    ]


class ContextParams(C.Structure):
    """struct llama_context_params (include/llama.h)."""
    _fields_ = [
        ("n_ctx", C.c_uint32), ("n_batch", C.c_uint32), ("n_ubatch", C.c_uint32), ("n_seq_max", C.c_uint32),
        ("n_rs_seq", C.c_uint32), ("n_outputs_max", C.c_uint32), ("n_outputs_max_per_seq", C.c_uint32),
        ("n_threads", C.c_int32), ("n_threads_batch", C.c_int32),
        ("ctx_type", C.c_int), ("rope_scaling_type", C.c_int), ("pooling_type", C.c_int),
        ("attention_type", C.c_int), ("flash_attn_type", C.c_int),
        ("rope_freq_base", C.c_float), ("rope_freq_scale", C.c_float), ("yarn_ext_factor", C.c_float),
        ("yarn_attn_factor", C.c_float), ("yarn_beta_fast", C.c_float), ("yarn_beta_slow", C.c_float),
        ("yarn_orig_ctx", C.c_uint32), ("defrag_thold", C.c_float),
        ("cb_eval", C.c_void_p), ("cb_eval_user_data", C.c_void_p),
        ("type_k", C.c_int), ("type_v", C.c_int), ("moe_cache_size", C.c_size_t),
        ("abort_callback", C.c_void_p), ("abort_callback_data", C.c_void_p),
        ("embeddings", C.c_bool), ("offload_kqv", C.c_bool), ("no_perf", C.c_bool), ("op_offload", C.c_bool),
        ("swa_full", C.c_bool), ("kv_unified", C.c_bool),
        ("samplers", C.c_void_p), ("n_samplers", C.c_size_t), ("ctx_other", C.c_void_p),
    ]


class Batch(C.Structure):
    """struct llama_batch (include/llama.h)."""
    _fields_ = [("n_tokens", C.c_int32), ("token", C.POINTER(C.c_int32)), ("embd", C.c_void_p),
                ("pos", C.c_void_p), ("n_seq_id", C.c_void_p), ("seq_id", C.c_void_p), ("logits", C.c_void_p)]


class ThreadpoolParams(C.Structure):
    """struct ggml_threadpool_params (ggml/include/ggml.h, GGML_MAX_N_THREADS = 512)."""
    _fields_ = [("cpumask", C.c_bool * 512), ("n_threads", C.c_int), ("prio", C.c_int), ("poll", C.c_uint32),
                ("strict_cpu", C.c_bool), ("paused", C.c_bool)]


GGML_TYPE_F16 = 1
LLAMA_FLASH_ATTN_TYPE_AUTO = -1
LOG_CB = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)


def _sig(name, res, *args):
    f = getattr(LIB, name)
    f.restype, f.argtypes = res, list(args)
    return f


llama_backend_init = _sig("llama_backend_init", None)
llama_log_set = _sig("llama_log_set", None, LOG_CB, C.c_void_p)
llama_model_default_params = _sig("llama_model_default_params", ModelParams)
llama_context_default_params = _sig("llama_context_default_params", ContextParams)
llama_model_load_from_file = _sig("llama_model_load_from_file", C.c_void_p, C.c_char_p, ModelParams)
llama_model_free = _sig("llama_model_free", None, C.c_void_p)
llama_init_from_model = _sig("llama_init_from_model", C.c_void_p, C.c_void_p, ContextParams)
llama_free = _sig("llama_free", None, C.c_void_p)
llama_model_get_vocab = _sig("llama_model_get_vocab", C.c_void_p, C.c_void_p)
llama_vocab_n_tokens = _sig("llama_vocab_n_tokens", C.c_int32, C.c_void_p)
llama_vocab_get_add_bos = _sig("llama_vocab_get_add_bos", C.c_bool, C.c_void_p)
llama_vocab_bos = _sig("llama_vocab_bos", C.c_int32, C.c_void_p)
llama_model_desc = _sig("llama_model_desc", C.c_int32, C.c_void_p, C.c_char_p, C.c_size_t)
llama_model_size = _sig("llama_model_size", C.c_uint64, C.c_void_p)
llama_model_n_params = _sig("llama_model_n_params", C.c_uint64, C.c_void_p)
llama_set_n_threads = _sig("llama_set_n_threads", None, C.c_void_p, C.c_int32, C.c_int32)
llama_batch_get_one = _sig("llama_batch_get_one", Batch, C.POINTER(C.c_int32), C.c_int32)
llama_decode = _sig("llama_decode", C.c_int32, C.c_void_p, Batch)
llama_synchronize = _sig("llama_synchronize", None, C.c_void_p)
llama_get_memory = _sig("llama_get_memory", C.c_void_p, C.c_void_p)
llama_memory_clear = _sig("llama_memory_clear", None, C.c_void_p, C.c_bool)
llama_attach_threadpool = _sig("llama_attach_threadpool", None, C.c_void_p, C.c_void_p, C.c_void_p)
ggml_threadpool_params_default = _sig("ggml_threadpool_params_default", ThreadpoolParams, C.c_int)
ggml_threadpool_new = _sig("ggml_threadpool_new", C.c_void_p, C.POINTER(ThreadpoolParams))
ggml_threadpool_free = _sig("ggml_threadpool_free", None, C.c_void_p)
llama_print_system_info = _sig("llama_print_system_info", C.c_char_p)


class Runner:
    """One model and context, with llama-bench's test_prompt / test_gen."""

    def __init__(self, model, n_ctx, threads, rng):
        self.rng = rng
        cp = llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, 2048, 512
        cp.type_k = cp.type_v = GGML_TYPE_F16
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO
        cp.offload_kqv, cp.op_offload, cp.embeddings, cp.swa_full = True, True, False, False
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = llama_init_from_model(model, cp)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")
        tpp = ggml_threadpool_params_default(threads)
        tpp.poll = 50
        self.pool = ggml_threadpool_new(C.byref(tpp))
        llama_attach_threadpool(self.ctx, self.pool, None)
        self.threads = threads
        vocab = llama_model_get_vocab(model)
        self.n_vocab = llama_vocab_n_tokens(vocab)
        self.bos = llama_vocab_bos(vocab) if llama_vocab_get_add_bos(vocab) else None
        self.buf = (C.c_int32 * max(n_ctx, 1))()

    def close(self):
        llama_free(self.ctx)
        ggml_threadpool_free(self.pool)

    def clear(self):
        llama_memory_clear(llama_get_memory(self.ctx), False)

    def prompt(self, n, first=True):
        """n tokens in n_batch pieces (llama-bench's test_prompt); BOS first when `first` and the vocab adds it."""
        llama_set_n_threads(self.ctx, self.threads, self.threads)
        done = 0
        while done < n:
            k = min(2048, n - done)
            for i in range(k):
                bos = first and done == 0 and i == 0 and self.bos is not None
                self.buf[i] = self.bos if bos else self.rng.randrange(self.n_vocab)
            if llama_decode(self.ctx, llama_batch_get_one(self.buf, k)) != 0:
                raise RuntimeError("llama_decode failed (prompt)")
            done += k
        llama_synchronize(self.ctx)

    def gen(self, n, first=True):
        llama_set_n_threads(self.ctx, self.threads, self.threads)
        self.buf[0] = self.bos if (first and self.bos is not None) else self.rng.randrange(self.n_vocab)
        for _ in range(n):
            if llama_decode(self.ctx, llama_batch_get_one(self.buf, 1)) != 0:
                raise RuntimeError("llama_decode failed (gen)")
            llama_synchronize(self.ctx)
            self.buf[0] = self.rng.randrange(self.n_vocab)


def stats(samples_ns, tokens):
    ts = [1e9 * tokens / s for s in samples_ns]
    return {
        "avg_ns": int(statistics.fmean(samples_ns)),
        "stddev_ns": int(statistics.stdev(samples_ns)) if len(samples_ns) > 1 else 0,
        "avg_ts": statistics.fmean(ts), "stddev_ts": statistics.stdev(ts) if len(ts) > 1 else 0.0,
        "median_ts": statistics.median(ts), "samples_ns": samples_ns, "samples_ts": ts,
    }


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def ints(values):
    return [int(v) for s in values for v in s.split(",") if v.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", action="append", required=True)
    ap.add_argument("-p", "--n-prompt", action="append", default=None)
    ap.add_argument("-n", "--n-gen", action="append", default=None)
    ap.add_argument("-d", "--n-depth", action="append", default=None)
    ap.add_argument("-t", "--threads", action="append", default=None)
    ap.add_argument("-r", "--repetitions", type=int, default=5)
    ap.add_argument("-o", "--output", choices=["json", "md"], default="md")
    a = ap.parse_args()
    prompts = [p for p in ints(a.n_prompt or ["512"]) if p > 0]
    gens = [n for n in ints(a.n_gen or ["128"]) if n > 0]
    depths = ints(a.n_depth or ["0"])
    threads = ints(a.threads or [str(os.cpu_count())])
    models = [m for s in a.model for m in s.split(",") if m]

    llama_log_set(_quiet, None)
    llama_backend_init()
    sysinfo = llama_print_system_info().decode()
    rng = random.Random(1234)
    rows = []
    for path in models:
        mp = llama_model_default_params()
        mp.n_gpu_layers = 0
        model = llama_model_load_from_file(path.encode(), mp)
        if not model:
            sys.exit(f"bench_llamacpp: cannot load {path}")
        desc = C.create_string_buffer(256)
        llama_model_desc(model, desc, 256)
        for t in threads:
            for p, n, d in [(p, 0, d) for p in prompts for d in depths] + [(0, n, d) for n in gens for d in depths]:
                r = Runner(model, d + p + n, t, rng)
                r.clear()
                # warm-up as llama-bench: a full prompt run, or one generated token (after the depth)
                if d:
                    r.prompt(d)
                r.prompt(p, first=not d) if p else r.gen(1, first=not d)
                samples = []
                for _ in range(a.repetitions):
                    r.clear()
                    if d:
                        r.prompt(d)
                    t0 = time.perf_counter_ns()
                    r.prompt(p, first=not d) if p else r.gen(n, first=not d)
                    samples.append(time.perf_counter_ns() - t0)
                r.close()
                row = {"build_commit": "xllamacpp-" + xllamacpp.__version__, "cpu_info": sysinfo.strip(),
                       "backends": "CPU", "model_filename": path, "model_type": desc.value.decode(),
                       "model_size": llama_model_size(model), "model_n_params": llama_model_n_params(model),
                       "n_batch": 2048, "n_ubatch": 512, "n_threads": t, "type_k": "f16", "type_v": "f16",
                       "n_prompt": p, "n_gen": n, "n_depth": d,
                       "test_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                row.update(stats(samples, p + n))
                row["peak_rss_bytes"] = peak_rss_bytes()
                rows.append(row)
                print(f"bench_llamacpp: {'pp%d' % p if p else 'tg%d' % n}{' @ d%d' % d if d else ''} t={t}: "
                      f"{row['avg_ts']:.2f} t/s",
                      file=sys.stderr)
        llama_model_free(model)
    if a.output == "json":
        print(json.dumps(rows, indent=2))
    else:
        print("| model | size | params | backend | threads | test | t/s | median t/s |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            test = (f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}") + (f" @ d{r['n_depth']}" if r["n_depth"] else "")
            print(f"| {r['model_type']} | {r['model_size'] / 2**20:.2f} MiB | {r['model_n_params'] / 1e6:.2f} M | CPU "
                  f"| {r['n_threads']} | {test} | {r['avg_ts']:.2f} ± {r['stddev_ts']:.2f} | {r['median_ts']:.2f} |")


@LOG_CB
def _quiet(level, text, user):
    pass


if __name__ == "__main__":
    main()
