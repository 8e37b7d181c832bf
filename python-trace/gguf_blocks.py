"""Random GGUF blocks of every quantised type Kiln reads, and real ones from a model file, with
the `gguf` package's own dequantisation of each, for tests/tests/gguf_blocks.rs:

    python gguf_blocks.py [MODEL.gguf]     # the Qwen2.5 Q4_K_M file: its Q4_K, Q5_0, Q6_K, Q8_0 blocks

Every byte of a random block is random but the f16 scales, which are set to finite values, so
every bit field of every block layout is exercised. Real blocks (`real Q4_K`, …) are the first
BLOCKS of the first tensor of each type in the file."""
import json
import pathlib
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader
from gguf.quants import dequantize, quantize

OUT = pathlib.Path(__file__).parent.parent / "tests" / "fixtures" / "gguf_blocks.json"
BLOCKS = 4

# type -> (bytes per block, byte offsets of its f16 scales)
LAYOUTS = {
    T.Q4_0: (18, [0]), T.Q4_1: (20, [0, 2]), T.Q5_0: (22, [0]), T.Q5_1: (24, [0, 2]), T.Q8_0: (34, [0]),
    T.Q2_K: (84, [80, 82]), T.Q3_K: (110, [108]), T.Q4_K: (144, [0, 2]), T.Q5_K: (176, [0, 2]), T.Q6_K: (210, [208]),
}


def quantize_cases(rng):
    """Rows of f32 (a zero block, exact halves, a block whose largest magnitude is negative, random
    scales) and what the `gguf` package's quantisers make of them, for `kiln compile --quant`."""
    rows = (rng.standard_normal((6, 64)) * rng.uniform(0.001, 10, (6, 1))).astype(np.float32)
    rows[0, :32] = 0
    rows[1, :32] = np.arange(32, dtype=np.float32) / 2 - 8
    rows[2, 5] = -50
    values = rows.reshape(-1)
    return {"values": [float(v) for v in values], **{t.name: quantize(values, t).tobytes().hex() for t in (T.Q8_0, T.Q4_0, T.Q5_0, T.BF16)}}


def main():
    rng = np.random.default_rng(7)
    out = {}
    for qtype, (size, scales) in LAYOUTS.items():
        blocks = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        for at in scales:
            blocks[:, at:at + 2] = rng.uniform(-2, 2, size=BLOCKS).astype(np.float16).view(np.uint8).reshape(BLOCKS, 2)
        values = dequantize(blocks.reshape(-1), qtype).reshape(-1)
        out[qtype.name] = {"type": int(qtype), "bytes": blocks.tobytes().hex(), "values": [float(v) for v in values]}
    for path in sys.argv[1:]:
        for tensor in GGUFReader(path).tensors:
            name = f"real {tensor.tensor_type.name}"
            if tensor.tensor_type in LAYOUTS and name not in out:
                blocks = np.asarray(tensor.data).reshape(-1)[:BLOCKS * LAYOUTS[tensor.tensor_type][0]]
                values = dequantize(blocks, tensor.tensor_type).reshape(-1)
                out[name] = {"type": int(tensor.tensor_type), "bytes": blocks.tobytes().hex(), "values": [float(v) for v in values]}
    out["quantize"] = quantize_cases(rng)
    OUT.write_text(json.dumps(out))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
