#!/usr/bin/env python3
"""Makes the i-quant dequantization fixture for Tests/ComputeTests/IQuantTests.swift.

For each of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M: random blocks (random bytes, the fp16 scale
finite) whose grid-index fields are then overwritten with 0, 1, 2, ... so that every row of the type's lookup grid
is visited at least once (the "sweep": 2048 rows of IQ1_S need 64 blocks of 32 indices), plus 4 fully random
blocks. The raw blocks go to <type>.blocks and gguf-py's reference dequantization (`gguf.quants.dequantize`,
gguf==0.19.0, pinned in the Makefile venv target) to <type>.f32 (little-endian float32); iq_manifest.json lists
them. Run: ../../../.venv/bin/python make_iq_fixture.py (in this folder).
"""
import importlib.metadata
import json
import numpy as np
from gguf import GGMLQuantizationType as T
import gguf.quants as q

rng = np.random.default_rng(1919)


def put_u16(raw, off, vals):
    raw[:, off:off + 2] = vals.astype("<u2").view(np.uint8).reshape(-1, 2)


def set_indices(name, raw, idx):
    """Writes grid indices idx[block, i] (i in block order) into the index fields of `raw` (blocks x bytes)."""
    n = raw.shape[0]
    if name == "iq2_xxs":      # group g: bytes 2+8g ... 2+8g+3
        for i in range(32):
            raw[:, 2 + 8 * (i // 4) + i % 4] = idx[:, i]
    elif name == "iq2_xs":     # qs[i] (uint16): 9-bit index | sign index << 9
        for i in range(32):
            cur = raw[:, 2 + 2 * i].astype(np.uint16) | (raw[:, 3 + 2 * i].astype(np.uint16) << 8)
            put_u16(raw, 2 + 2 * i, (cur & 0xFE00) | idx[:, i])
    elif name == "iq2_s":      # qs[i] low 8 bits, qh[i/4] bits 2(i%4)...
        for i in range(32):
            raw[:, 2 + i] = idx[:, i] & 255
            m = np.uint8(3 << (2 * (i % 4)))
            raw[:, 66 + i // 4] = (raw[:, 66 + i // 4] & ~m) | (((idx[:, i] >> 8) & 3) << (2 * (i % 4))).astype(np.uint8)
    elif name == "iq3_xxs":    # qs[0..63]
        raw[:, 2:66] = idx
    elif name == "iq3_s":      # qs[i] low 8 bits, qh[i/8] bit i%8
        for i in range(64):
            raw[:, 2 + i] = idx[:, i] & 255
            m = np.uint8(1 << (i % 8))
            raw[:, 66 + i // 8] = (raw[:, 66 + i // 8] & ~m) | (((idx[:, i] >> 8) & 1) << (i % 8)).astype(np.uint8)
    elif name == "iq1_s":      # qs[i] low 8 bits, qh[i/4] (uint16 at 34) bits 3(i%4)...
        for i in range(32):
            raw[:, 2 + i] = idx[:, i] & 255
        for k in range(8):
            cur = raw[:, 34 + 2 * k].astype(np.uint16) | (raw[:, 35 + 2 * k].astype(np.uint16) << 8)
            for l in range(4):
                cur = (cur & ~np.uint16(7 << (3 * l))) | ((idx[:, 4 * k + l] >> 8) << (3 * l)).astype(np.uint16)
            put_u16(raw, 34 + 2 * k, cur)
    elif name == "iq1_m":      # qs[i] low 8 bits, bits 0-2 of nibble i%2 of qh[i/2]
        for i in range(32):
            raw[:, i] = idx[:, i] & 255
            sh = 4 * (i % 2)
            m = np.uint8(7 << sh)
            raw[:, 32 + i // 2] = (raw[:, 32 + i // 2] & ~m) | ((idx[:, i] >> 8) << sh).astype(np.uint8)
    else:
        raise ValueError(name)


# name -> (type, grid rows, grid indices per block)
TYPES = {
    "iq2_xxs": (T.IQ2_XXS, 256, 32), "iq2_xs": (T.IQ2_XS, 512, 32), "iq2_s": (T.IQ2_S, 1024, 32),
    "iq3_xxs": (T.IQ3_XXS, 256, 64), "iq3_s": (T.IQ3_S, 512, 64), "iq1_s": (T.IQ1_S, 2048, 32),
    "iq1_m": (T.IQ1_M, 2048, 32),
}
manifest = {}
for name, (qt, rows, per_block) in TYPES.items():
    block_elems, type_size = q.GGML_QUANT_SIZES[qt]
    sweep = rows // per_block
    nblocks = sweep + 4
    raw = rng.integers(0, 256, size=(nblocks, type_size), dtype=np.uint8)
    idx = (np.arange(sweep * per_block, dtype=np.int64) % rows).reshape(sweep, per_block)
    sub = raw[:sweep].copy()
    set_indices(name, sub, idx)
    raw[:sweep] = sub
    d = rng.uniform(-0.05, 0.05, size=nblocks).astype(np.float16).view(np.uint16)
    if qt == T.IQ1_M:          # the fp16 d is the top nibbles of the four uint16 scales
        for k in range(4):
            off = 48 + 2 * k
            cur = raw[:, off].astype(np.uint16) | (raw[:, off + 1].astype(np.uint16) << 8)
            put_u16(raw, off, (cur & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12))
    else:
        put_u16(raw, 0, d)
    flat = raw.reshape(-1)
    out = q.dequantize(flat, qt).astype("<f4").reshape(-1)
    assert out.size == nblocks * block_elems and np.all(np.isfinite(out))
    flat.tofile(f"{name}.blocks")
    out.tofile(f"{name}.f32")
    manifest[name] = {"ggml_type": int(qt), "elements": int(out.size), "bytes": int(flat.size),
                      "sweep_blocks": sweep, "grid_rows": rows}
with open("iq_manifest.json", "w") as f:
    json.dump({"generator": "gguf.quants.dequantize (gguf==%s)" % importlib.metadata.version("gguf"),
               "seed": 1919, "types": manifest}, f, indent=1)
