#!/usr/bin/env bash
# bench-env.sh — prints the machine/commit lines of a BENCHMARKS.md section (sourced by bench.sh and
# bench-compare.sh): CPU model, vCPUs, memory, the SIMD flags that matter, load average, git commit.
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
simd=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'sse4_2|avx|avx2|fma|f16c|bmi2|avx_vnni|avx512[a-z_0-9]*|amx[a-z_0-9]*' | sort -u | tr '\n' ' ')
case "$simd" in *avx512*) ;; *) simd="$simd(no AVX-512)";; esac
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || commit="$commit (+ uncommitted changes in Sources)"
echo "- Machine: $cpu_model, $(nproc) vCPUs, $mem; SIMD flags: $simd"
echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) — the machine is shared with other builders, so absolute numbers are noisy; compare within a section."
echo "- Commit: $commit"
