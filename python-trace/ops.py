"""The Kiln op set, twice: `TorchOps` computes it (the reference semantics),
`GraphOps` records it as graph JSON (schema v1, see graphs/README.md).

An architecture's forward pass is written once against `ops` and runs on either.
Shapes: T = tokens in this pass, R = rows whose logits are wanted, S = KV-cache rows.
"""
import math
import re

import torch

SCHEMA_VERSION = 1


# ---------------------------------------------------------------- dimensions
def eval_dim(expr, env):
    """A dimension expression: integers and symbols joined by `*`, `/` and `+`, left to right."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\d+|[*/+]", str(expr))
    value, op = None, None
    for tok in tokens:
        if tok in "*/+":
            op = tok
            continue
        v = int(tok) if tok.isdigit() else env[tok]
        if value is None:
            value = v
        elif op == "*":
            value *= v
        elif op == "+":
            value += v
        else:
            if v == 0 or value % v:
                raise ValueError(f"dimension '{expr}' does not divide evenly")
            value //= v
    return value


def config_value(config, keys):
    """The first of `keys` (dotted paths) present in a config dict, else None."""
    for key in keys:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def bind(spec, config):
    """Binds an architecture's `dims` and `params` specs to a config dict."""
    dims = {}
    for name, d in spec["dims"].items():
        value = config_value(config, d.get("config", []))
        dims[name] = int(value) if value is not None else eval_dim(d["default"], dims)
    params = {}
    for name, p in spec["params"].items():
        value = config_value(config, p.get("config", []))
        params[name] = value if value is not None else p.get("default")
    return dims, params


# ---------------------------------------------------------------- rope tables
def rope_inv_freq(head_dim, theta, scaling):
    """Inverse frequencies [head_dim/2] (float32), with Llama-3 / linear scaling."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) * ~(wavelen > old / lo)
        return torch.where(medium, smoothed, scaled)
    raise ValueError(f"unsupported rope_type '{kind}'")


# ---------------------------------------------------------------- eager reference
class TorchOps:
    """Computes each op in float32 torch. `weights` maps names to tensors; caches are
    [S, kv_dim] tensors in `inputs`, updated in place by kv_write."""

    def __init__(self, dims, params, weights, inputs):
        self.dims, self.params, self.weights, self.inputs = dims, params, weights, inputs

    def dim(self, name):
        return eval_dim(name, self.dims)

    def param(self, name):
        return self.params[name]

    def input(self, name, shape, dtype="f32"):
        return self.inputs[name]

    def weight(self, name, shape, tied_to=None, first_row=None):
        if name not in self.weights and tied_to is not None:
            name = tied_to
        w = self.weights[name].float()
        if first_row is not None:  # rows first_row .. first_row + shape[0] of a fused weight
            w = w[self.dim(first_row):self.dim(first_row) + self.dim(shape[0])]
        assert list(w.shape) == [self.dim(d) for d in shape], (name, w.shape, shape)
        return w

    def repeat(self, count, x, body):
        for layer in range(self.dim(count)):
            x = body(layer, x)
        return x

    def gather(self, table, idx):  # [N, D], [R] -> [R, D]
        return table[idx.long()]

    def rms_norm(self, x, eps):  # [T, D] -> [T, D]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    def head_rms_norm(self, x, g, eps, head_dim):  # [T, H*Dh], [Dh] -> [T, H*Dh]
        heads = x.view(x.shape[0], -1, head_dim)
        return (heads * torch.rsqrt(heads.pow(2).mean(-1, keepdim=True) + eps) * g).reshape(x.shape)

    def add(self, a, b):
        return a + b

    def mul(self, a, b):
        return a * b

    def silu(self, x):
        return torch.nn.functional.silu(x)

    def scale(self, x, factor=1.0, divisor=1.0):
        return x * factor / divisor

    def matmul(self, x, w):  # [T, K], [N, K] -> [T, N]
        return x @ w.T

    def rope(self, x, pos, head_dim, theta, scaling):  # [T, H*Dh], [T] -> [T, H*Dh]
        inv = rope_inv_freq(head_dim, theta, scaling)
        freqs = pos.float()[:, None] * inv[None, :]  # [T, Dh/2]
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
        xh = x.view(x.shape[0], -1, head_dim)
        half = head_dim // 2
        rot = torch.cat([-xh[..., half:], xh[..., :half]], -1)
        return (xh * cos + rot * sin).reshape(x.shape)

    def kv_write(self, cache, x, pos):  # [S, D], [T, D], [T] -> [S, D]
        cache[pos.long()] = x
        return cache

    def attention(self, q, k_cache, v_cache, pos, heads, kv_heads, head_dim, scale, window=None):
        # q [T, H*Dh]; caches [S, KVH*Dh]; query t sees cache rows 0..=pos[t], or with a window
        # only the last `window` of them: pos[t] - window < row <= pos[t]
        T, S = q.shape[0], k_cache.shape[0]
        qh = q.view(T, heads, head_dim).transpose(0, 1)  # [H, T, Dh]
        rep = heads // kv_heads
        k = k_cache.view(S, kv_heads, head_dim).transpose(0, 1).repeat_interleave(rep, 0)
        v = v_cache.view(S, kv_heads, head_dim).transpose(0, 1).repeat_interleave(rep, 0)
        scale = head_dim ** -0.5 if scale is None else scale
        scores = (qh @ k.transpose(1, 2)) * scale  # [H, T, S]
        rows, p = torch.arange(S)[None, :], pos.long()[:, None]
        visible = (rows <= p) & (rows > p - window if window is not None else True)  # [T, S]
        scores = scores.masked_fill(~visible[None], float("-inf"))
        out = torch.softmax(scores, -1) @ v  # [H, T, Dh]
        return out.transpose(0, 1).reshape(T, heads * head_dim)


# ---------------------------------------------------------------- graph recorder
class Value:
    """A recorded node's output: its id and symbolic shape."""

    def __init__(self, node_id, shape):
        self.id, self.shape = node_id, shape


class GraphOps:
    """Records the ops as graph JSON nodes. Dimensions stay symbols; inside `repeat`
    the layer index is the literal `{layer}` in weight and input names."""

    def __init__(self, spec):
        self.spec = spec
        self.sections = {"prologue": [], "layer": [], "epilogue": []}
        self.section = "prologue"
        self.next_id = 0
        self.repeat_info = None

    def dim(self, name):
        return name

    def param(self, name):
        return {"param": name}

    def _node(self, op, inputs, shape, **attrs):
        node = {"id": self.next_id, "op": op, "inputs": [v.id for v in inputs], "shape": shape}
        if attrs:
            node["attrs"] = attrs
        self.sections[self.section].append(node)
        self.next_id += 1
        return Value(node["id"], shape)

    def input(self, name, shape, dtype="f32"):
        return self._node("input", [], shape, name=name, dtype=dtype)

    def weight(self, name, shape, tied_to=None, first_row=None):
        attrs = {"name": name} | ({"tied_to": tied_to} if tied_to else {}) | ({"first_row": first_row} if first_row is not None else {})
        return self._node("weight", [], shape, **attrs)

    def repeat(self, count, x, body):
        self.section = "layer"
        carry = self._node("carry", [], x.shape)
        out = body("{layer}", carry)
        self.repeat_info = {"count": count, "carry_in": x.id, "carry": carry.id, "carry_out": out.id}
        self.section = "epilogue"
        return Value(out.id, out.shape)

    def gather(self, table, idx):
        return self._node("gather", [table, idx], [idx.shape[0], table.shape[1]])

    def rms_norm(self, x, eps):
        return self._node("rms_norm", [x], x.shape, eps=eps)

    def head_rms_norm(self, x, g, eps, head_dim):
        return self._node("head_rms_norm", [x, g], x.shape, eps=eps, head_dim=head_dim)

    def _elementwise(self, op, a, b):
        if b.shape != a.shape and b.shape != a.shape[-1:]:
            raise ValueError(f"{op}: cannot broadcast {b.shape} to {a.shape}")
        return self._node(op, [a, b], a.shape)

    def add(self, a, b):
        return self._elementwise("add", a, b)

    def mul(self, a, b):
        return self._elementwise("mul", a, b)

    def silu(self, x):
        return self._node("silu", [x], x.shape)

    def scale(self, x, factor=1.0, divisor=1.0):
        attrs = {k: v for k, v in dict(factor=factor, divisor=divisor).items() if v != 1.0}
        return self._node("scale", [x], x.shape, **attrs)

    def matmul(self, x, w):
        return self._node("matmul", [x, w], [x.shape[0], w.shape[0]])

    def rope(self, x, pos, head_dim, theta, scaling):
        return self._node("rope", [x, pos], x.shape, head_dim=head_dim, theta=theta, scaling=scaling)

    def kv_write(self, cache, x, pos):
        return self._node("kv_write", [cache, x, pos], cache.shape)

    def attention(self, q, k_cache, v_cache, pos, heads, kv_heads, head_dim, scale, window=None):
        attrs = dict(heads=heads, kv_heads=kv_heads, head_dim=head_dim)
        attrs |= {"scale": scale} if scale is not None else {}
        attrs |= {"window": window} if window is not None else {}
        return self._node("attention", [q, k_cache, v_cache, pos], q.shape, **attrs)

    def to_json(self, outputs):
        return {
            "schema": SCHEMA_VERSION,
            "architecture": self.spec["architecture"],
            "hf_architectures": self.spec["hf_architectures"],
            **({"gguf": self.spec["gguf"]} if self.spec.get("gguf") else {}),
            "supported": self.spec.get("supported", {}),
            "dims": self.spec["dims"],
            "params": self.spec["params"],
            "prologue": self.sections["prologue"],
            "layer": self.repeat_info | {"nodes": self.sections["layer"]},
            "epilogue": self.sections["epilogue"],
            "outputs": {name: v.id for name, v in outputs.items()},
        }
