"""Seed corpora for the fuzz targets, from real files: `python seeds.py OUT ARTIFACT GGUF`.

OUT/<target>/ gets: tiny GGUF files of each family written with the `gguf` package
(python-trace/make_gguf_fixtures.py; and the head of the real GGUF), fixture folders
(config.json | SEPARATOR | safetensors), a compiled artifact, the traced graphs with fixture
configs, the 44 chat templates with each test conversation, and token id sequences."""
import json
import struct
import sys
from pathlib import Path

import gguf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python-trace"))
import make_gguf_fixtures  # noqa: E402

FIXTURES = ROOT / "tests/fixtures"
SEPARATOR = b"\n\0KILN-FUZZ\0\n"


def main(out: Path, artifact: Path, real_gguf: Path):
    seeds = {t: out / t for t in ["gguf", "safetensors_folder", "artifact", "graph", "chat_template", "tokenizer"]}
    for d in seeds.values():
        d.mkdir(parents=True, exist_ok=True)

    for name in make_gguf_fixtures.NAMES:
        for quant in [gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0]:
            make_gguf_fixtures.write(name, seeds["gguf"] / f"{name}_{quant.name}.gguf", quant)
    (seeds["gguf"] / "smollm2_head.gguf").write_bytes(real_gguf.read_bytes()[: 1 << 16])

    for name in ["llama_tied_gqa", "llama_untied_llama3_rope"]:
        folder = FIXTURES / name
        weights = sorted(folder.glob("*.safetensors"))[0]
        (seeds["safetensors_folder"] / name).write_bytes((folder / "config.json").read_bytes() + SEPARATOR + weights.read_bytes())
        for graph in sorted((ROOT / "graphs").glob("*.json")):
            (seeds["graph"] / f"{graph.stem}_{name}").write_bytes(graph.read_bytes() + SEPARATOR + (folder / "config.json").read_bytes())

    (seeds["artifact"] / "tiny.kiln").write_bytes(artifact.read_bytes())

    expected = json.loads((FIXTURES / "chat-templates/expected.json").read_text())
    for template in sorted((FIXTURES / "chat-templates/templates").glob("*.jinja")):
        for case, conv in expected["cases"].items():
            variables = dict(conv, add_generation_prompt=True, **expected["special_tokens"])
            (seeds["chat_template"] / f"{template.stem}_{case}").write_bytes(template.read_bytes() + SEPARATOR + json.dumps(variables).encode())

    for i, ids in enumerate([list(range(40)), [5, 200, 17, 0, 1, 2, 90] * 5, list(range(250, 270))]):
        (seeds["tokenizer"] / f"ids_{i}").write_bytes(b"".join(struct.pack("<I", t) for t in ids))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
