"""Traces every architecture into graphs/<arch>.json:  python trace.py [OUT_DIR]."""
import json
import pathlib
import sys

from ops import GraphOps
import gemma2
import gemma3
import granite
import llama
import mistral
import phi3
import qwen2
import qwen3

ARCHITECTURES = [llama, qwen2, qwen3, mistral, granite, phi3, gemma2, gemma3]


def trace(module):
    ops = GraphOps(module.SPEC)
    return ops.to_json(module.forward(ops))


def render(graph):
    """Pretty JSON with one node per line, so diffs of graphs read node by node."""
    def nodes(items):
        return "[\n" + ",\n".join("  " + json.dumps(n) for n in items) + "\n ]"
    parts = []
    for key, value in graph.items():
        if key in ("prologue", "epilogue"):
            text = nodes(value)
        elif key == "layer":
            head = {k: v for k, v in value.items() if k != "nodes"}
            text = json.dumps(head)[:-1] + ', "nodes": ' + nodes(value["nodes"]) + "}"
        else:
            text = json.dumps(value)
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent / "graphs")
    for module in ARCHITECTURES:
        path = out / f"{module.SPEC['architecture']}.json"
        path.write_text(render(trace(module)))
        print(f"wrote {path}")
