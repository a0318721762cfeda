#!/usr/bin/env python3
"""Makes the dequantization fixture of the low-bit K-quants and the non-linear 4-bit types for
Tests/ComputeTests/LowBitKQuantTests.swift (same scheme as make_quant_fixture.py).

For q2_K, q3_K, iq4_nl and iq4_xs, random blocks (random bytes with the fp16 scale fields replaced by finite values)
are written raw to <type>.blocks and dequantized by gguf-py's reference dequantizer (`gguf.quants.dequantize`,
gguf==0.19.0) into <type>.f32 (little-endian float32). Run: python3 make_lowbit_k_fixture.py (in this folder).
"""
import json
import numpy as np
from gguf import GGMLQuantizationType as T
import gguf.quants as q

rng = np.random.default_rng(1919)
# type name -> (ggml type, blocks, byte offsets of fp16 fields inside a block)
TYPES = {
    "q2_K": (T.Q2_K, 8, [80, 82]), "q3_K": (T.Q3_K, 8, [108]), "iq4_nl": (T.IQ4_NL, 32, [0]),
    "iq4_xs": (T.IQ4_XS, 8, [0]),
}
manifest = {}
for name, (qt, nblocks, half_offsets) in TYPES.items():
    block_elems, type_size = q.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(nblocks, type_size), dtype=np.uint8)
    for off in half_offsets:
        vals = rng.uniform(-0.05, 0.05, size=nblocks).astype(np.float16)
        raw[:, off:off + 2] = vals.view(np.uint8).reshape(nblocks, 2)
    flat = raw.reshape(-1)
    out = q.dequantize(flat, qt).astype("<f4").reshape(-1)
    assert out.size == nblocks * block_elems and np.all(np.isfinite(out))
    flat.tofile(f"{name}.blocks")
    out.tofile(f"{name}.f32")
    manifest[name] = {"ggml_type": int(qt), "elements": int(out.size), "bytes": int(flat.size)}
with open("manifest-lowbit-k.json", "w") as f:
    json.dump({"generator": "gguf.quants.dequantize (gguf==0.19.0)", "seed": 1919, "types": manifest}, f, indent=1)
