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


class PerLayer(list):
    """A parameter with one value per layer (by the layer's kind): `ops.param` inside `repeat`
    gives the current layer's."""


def layer_kinds(spec, config, layers):
    """Each layer's kind (`"sliding_attention"`…): the config's list, else the spec's pattern (every
    `period`-th layer is kinds[1], the others kinds[0], as transformers fills in `layer_types`)."""
    lk = spec.get("layer_kinds")
    if lk is None:
        return None
    kinds = config_value(config, lk["config"])
    if kinds is None:
        period = config_value(config, lk["period"]["config"]) or lk["period"]["default"]
        if isinstance(period, list):  # GGUF: a flag per layer, true for kinds[0]
            kinds = [lk["kinds"][0 if flag else 1] for flag in period]
        else:
            kinds = [lk["kinds"][0] if (i + 1) % period else lk["kinds"][1] for i in range(layers)]
    unknown = [k for k in kinds if k not in lk["kinds"]]
    if len(kinds) != layers or unknown:
        raise ValueError(f"layer kinds {kinds}: want {layers} of {lk['kinds']}")
    return kinds


def bind_param(p, config):
    value = config_value(config, p.get("config", []))
    return value if value is not None else p.get("default")


def bind(spec, config):
    """Binds an architecture's `dims` and `params` specs to a config dict."""
    dims = {}
    for name, d in spec["dims"].items():
        value = config_value(config, d.get("config", []))
        dims[name] = int(value) if value is not None else eval_dim(d["default"], dims)
    kinds = layer_kinds(spec, config, dims["layers"])
    params = {}
    for name, p in spec["params"].items():
        by_kind = p.get("by_layer_kind")
        params[name] = PerLayer(bind_param(by_kind[k], config) for k in kinds) if by_kind else bind_param(p, config)
    return dims, params


# ---------------------------------------------------------------- rope tables
def rope_inv_freq(dim, theta, scaling, pos=0, original_context=None):
    """Inverse frequencies [dim/2] (float32) of the rotated `dim` values of a head at position
    `pos`, with linear, Llama-3 or longrope scaling (`original_context`: longrope's
    original_max_position_embeddings where the scaling does not give it)."""
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    kind = rope_kind(scaling)
    if (scaling or {}).get("freq_factors"):  # llama.cpp's rope_freqs: divisors per frequency
        return inv / torch.tensor(scaling["freq_factors"], dtype=torch.float32)
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / scaling["factor"]
    if kind in ("longrope", "su"):  # the long factors from original_max_position_embeddings on
        long = pos >= scaling.get("original_max_position_embeddings", original_context)
        factors = torch.tensor(scaling["long_factor" if long else "short_factor"], dtype=torch.float32)
        return 1.0 / (factors * theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
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


def rope_kind(scaling):
    """The rope type; longrope where factors are given without one (GGUF files)."""
    scaling = scaling or {}
    return scaling.get("rope_type", scaling.get("type", "longrope" if "long_factor" in scaling else "default"))


def rope_attention_factor(scaling, max_context, original_context=None):
    """How much longrope scales cos and sin: the config's `attention_factor`, else
    sqrt(1 + ln(s) / ln(original)) for a context stretched s times (1 when not stretched)."""
    if rope_kind(scaling) not in ("longrope", "su"):
        return 1.0
    if scaling.get("attention_factor") is not None:
        return scaling["attention_factor"]
    original = scaling.get("original_max_position_embeddings", original_context)
    factor = scaling.get("factor") or max_context / original
    return 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))


# ---------------------------------------------------------------- eager reference
class TorchOps:
    """Computes each op in float32 torch. `weights` maps names to tensors; caches are
    [S, kv_dim] tensors in `inputs`, updated in place by kv_write."""

    def __init__(self, dims, params, weights, inputs):
        self.dims, self.params, self.weights, self.inputs = dims, params, weights, inputs

    def dim(self, name):
        return eval_dim(name, self.dims)

    def param(self, name):
        value = self.params[name]
        return value[self.layer] if isinstance(value, PerLayer) else value

    def power(self, value, exponent):
        return None if value is None else float(value) ** exponent

    def times(self, a, b):
        return a * b

    def first(self, a, b):
        return a if a is not None else b

    def input(self, name, shape, dtype="f32"):
        return self.inputs[name]

    def weight(self, name, shape, tied_to=None, first_row=None, offset=None):
        if name not in self.weights and tied_to is not None:
            name = tied_to
        w = self.weights[name].float() + (offset or 0.0)
        if first_row is not None:  # rows first_row .. first_row + shape[0] of a fused weight
            w = w[self.dim(first_row):self.dim(first_row) + self.dim(shape[0])]
        assert list(w.shape) == [self.dim(d) for d in shape], (name, w.shape, shape)
        return w

    def repeat(self, count, x, body):
        for self.layer in range(self.dim(count)):
            x = body(self.layer, x)
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

    def gelu_tanh(self, x):
        return torch.nn.functional.gelu(x, approximate="tanh")

    def softcap(self, x, cap):
        return x if cap is None else torch.tanh(x / cap) * cap

    def scale(self, x, factor=1.0, divisor=1.0):
        return x * factor / divisor

    def matmul(self, x, w):  # [T, K], [N, K] -> [T, N]
        return x @ w.T

    def rope(self, x, pos, head_dim, theta, scaling, rotary_dim=None, original_context=None):  # [T, H*Dh], [T] -> [T, H*Dh]
        d = int(rotary_dim or head_dim)  # the first d values of each head turn, the rest pass through
        inv = torch.stack([rope_inv_freq(d, theta, scaling, int(p), original_context) for p in pos])  # [T, d/2]
        freqs = pos.float()[:, None] * inv  # [T, d/2]
        emb = torch.cat([freqs, freqs], -1)
        m = rope_attention_factor(scaling, self.dims["max_context"], original_context)
        cos, sin = (emb.cos() * m)[:, None, :], (emb.sin() * m)[:, None, :]
        xh = x.view(x.shape[0], -1, head_dim)
        xr, rest = xh[..., :d], xh[..., d:]
        rot = torch.cat([-xr[..., d // 2:], xr[..., :d // 2]], -1)
        return torch.cat([xr * cos + rot * sin, rest], -1).reshape(x.shape)

    def kv_write(self, cache, x, pos):  # [S, D], [T, D], [T] -> [S, D]
        cache[pos.long()] = x
        return cache

    def attention(self, q, k_cache, v_cache, pos, heads, kv_heads, head_dim, scale, window=None, softcap=None):
        # q [T, H*Dh]; caches [S, KVH*Dh]; query t sees cache rows 0..=pos[t], or with a window
        # only the last `window` of them: pos[t] - window < row <= pos[t]; scores soft-capped
        # to (-softcap, softcap) where set
        T, S = q.shape[0], k_cache.shape[0]
        qh = q.view(T, heads, head_dim).transpose(0, 1)  # [H, T, Dh]
        rep = heads // kv_heads
        k = k_cache.view(S, kv_heads, head_dim).transpose(0, 1).repeat_interleave(rep, 0)
        v = v_cache.view(S, kv_heads, head_dim).transpose(0, 1).repeat_interleave(rep, 0)
        scale = head_dim ** -0.5 if scale is None else scale
        scores = self.softcap((qh @ k.transpose(1, 2)) * scale, softcap)  # [H, T, S]
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

    def power(self, value, exponent):
        return {"pow": [value, exponent]}

    def times(self, a, b):
        return {"mul": [a, b]}

    def first(self, a, b):
        return {"first": [a, b]}

    def _node(self, op, inputs, shape, **attrs):
        node = {"id": self.next_id, "op": op, "inputs": [v.id for v in inputs], "shape": shape}
        if attrs:
            node["attrs"] = attrs
        self.sections[self.section].append(node)
        self.next_id += 1
        return Value(node["id"], shape)

    def input(self, name, shape, dtype="f32"):
        return self._node("input", [], shape, name=name, dtype=dtype)

    def weight(self, name, shape, tied_to=None, first_row=None, offset=None):
        attrs = {"name": name, "tied_to": tied_to, "first_row": first_row, "offset": offset}
        return self._node("weight", [], shape, **{k: v for k, v in attrs.items() if v is not None})

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

    def gelu_tanh(self, x):
        return self._node("gelu_tanh", [x], x.shape)

    def softcap(self, x, cap):
        return self._node("softcap", [x], x.shape, cap=cap)

    def scale(self, x, factor=1.0, divisor=1.0):
        attrs = {k: v for k, v in dict(factor=factor, divisor=divisor).items() if v != 1.0}
        return self._node("scale", [x], x.shape, **attrs)

    def matmul(self, x, w):
        return self._node("matmul", [x, w], [x.shape[0], w.shape[0]])

    def rope(self, x, pos, head_dim, theta, scaling, rotary_dim=None, original_context=None):
        extra = {k: v for k, v in dict(rotary_dim=rotary_dim, original_context=original_context).items() if v is not None}
        return self._node("rope", [x, pos], x.shape, head_dim=head_dim, theta=theta, scaling=scaling, **extra)

    def kv_write(self, cache, x, pos):
        return self._node("kv_write", [cache, x, pos], cache.shape)

    def attention(self, q, k_cache, v_cache, pos, heads, kv_heads, head_dim, scale, window=None, softcap=None):
        attrs = dict(heads=heads, kv_heads=kv_heads, head_dim=head_dim)
        attrs |= {k: v for k, v in dict(scale=scale, window=window, softcap=softcap).items() if v is not None}
        return self._node("attention", [q, k_cache, v_cache, pos], q.shape, **attrs)

    def to_json(self, outputs):
        return {
            "schema": SCHEMA_VERSION,
            "architecture": self.spec["architecture"],
            "hf_architectures": self.spec["hf_architectures"],
            **({"gguf": self.spec["gguf"]} if self.spec.get("gguf") else {}),
            "supported": self.spec.get("supported", {}),
            **({"layer_kinds": self.spec["layer_kinds"]} if self.spec.get("layer_kinds") else {}),
            "dims": self.spec["dims"],
            "params": self.spec["params"],
            "prologue": self.sections["prologue"],
            "layer": self.repeat_info | {"nodes": self.sections["layer"]},
            "epilogue": self.sections["epilogue"],
            "outputs": {name: v.id for name, v in outputs.items()},
        }
