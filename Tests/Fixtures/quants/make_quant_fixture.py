#!/usr/bin/env python3
"""Makes the dequantization fixture for Tests/ComputeTests/QuantFormatTests.swift.

For each weight type, random blocks (random bytes with the fp16 scale fields replaced by finite values) are
written raw to <type>.blocks and dequantized by gguf-py's reference dequantizer (`gguf.quants.dequantize`,
gguf==0.19.0) into <type>.f32 (little-endian float32). Run: python3 make_quant_fixture.py (in this folder).
"""
import json
import numpy as np
from gguf import GGMLQuantizationType as T
import gguf.quants as q

rng = np.random.default_rng(4242)
# type name -> (ggml type, blocks, byte offsets of fp16 fields inside a block)
TYPES = {
    "q4_0": (T.Q4_0, 16, [0]), "q4_1": (T.Q4_1, 16, [0, 2]), "q5_0": (T.Q5_0, 16, [0]),
    "q5_1": (T.Q5_1, 16, [0, 2]), "q8_0": (T.Q8_0, 16, [0]), "q4_K": (T.Q4_K, 4, [0, 2]),
    "q5_K": (T.Q5_K, 4, [0, 2]), "q6_K": (T.Q6_K, 4, [208]), "bf16": (T.BF16, 256, []), "f16": (T.F16, 256, []),
}
manifest = {}
for name, (qt, nblocks, half_offsets) in TYPES.items():
    block_elems, type_size = q.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(nblocks, type_size), dtype=np.uint8)
    for off in half_offsets:
        vals = rng.uniform(-0.05, 0.05, size=nblocks).astype(np.float16)
        raw[:, off:off + 2] = vals.view(np.uint8).reshape(nblocks, 2)
    if qt == T.BF16:
        vals = rng.normal(0, 1, size=nblocks * type_size // 2).astype(np.float32)
        raw = (vals.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(nblocks, type_size)
    if qt == T.F16:
        raw = rng.normal(0, 1, size=nblocks).astype(np.float16).view(np.uint8).reshape(nblocks, type_size)
    flat = raw.reshape(-1)
    out = q.dequantize(flat, qt).astype("<f4").reshape(-1)
    assert out.size == nblocks * block_elems and np.all(np.isfinite(out))
    flat.tofile(f"{name}.blocks")
    out.tofile(f"{name}.f32")
    manifest[name] = {"ggml_type": int(qt), "elements": int(out.size), "bytes": int(flat.size)}
with open("manifest.json", "w") as f:
    json.dump({"generator": "gguf.quants.dequantize (gguf==0.19.0)", "seed": 4242, "types": manifest}, f, indent=1)
