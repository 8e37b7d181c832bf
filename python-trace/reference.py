"""Helpers shared by the tests and fixture scripts: run a Kiln architecture definition
in torch on a Hugging Face state dict, the same way the compiled artifact runs it."""
import torch

from ops import TorchOps, bind


class TorchModel:
    """A Kiln architecture (a module with SPEC and forward) bound to a config and weights,
    holding its own KV cache of `context` rows."""

    def __init__(self, arch, config, weights, context=64):
        self.arch = arch
        self.dims, self.params = bind(arch.SPEC, config)
        self.weights = weights
        kv_dim = self.dims["kv_dim"]
        self.caches = {f"{kind}_cache.{layer}": torch.zeros(context, kv_dim)
                       for layer in range(self.dims["layers"]) for kind in ("k", "v")}

    @torch.no_grad()
    def forward(self, tokens, positions, logit_rows=None):
        """tokens, positions: [T] ints -> logits [R, vocab] (all rows by default)."""
        T = len(tokens)
        inputs = dict(self.caches,
                      tokens=torch.tensor(tokens, dtype=torch.int32),
                      positions=torch.tensor(positions, dtype=torch.int32),
                      logit_rows=torch.tensor(range(T) if logit_rows is None else logit_rows, dtype=torch.int32))
        ops = TorchOps(self.dims, self.params, self.weights, inputs)
        return self.arch.forward(ops)["logits"]
