"""Writes tests/fixtures/sentencepiece.json: a small sentencepiece vocabulary as GGUF metadata
(tokens with scores, byte tokens, control tokens; no merges, as llama.cpp writes them) and, for
each way transformers builds a tokenizer from it (Llama's, Phi-3's, Gemma's), the ids its own
`convert_gguf_tokenizer` gives for varied texts:  python make_sentencepiece_fixture.py"""
import json
import pathlib

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

OUT = pathlib.Path(__file__).parent.parent / "tests" / "fixtures" / "sentencepiece.json"
CORPUS = ("The quick brown fox jumps over the lazy dog. What is the capital of France? Paris is.  Two  spaces, "
          "then code: def f(x): return x * 2  # done\n\tindent 1234567 ") * 20
TEXTS = ["Hello world", " leading space", "two  spaces and\nnew lines\n\n", "café naïve – “quotes” 東京 🙂",
         "def f(x):\n    return x * 2", "</s> is a control token, <s> too", "1234567890", ""]
STYLES = {"llama": "llama", "phi3": "phi3", "gemma": "gemma3"}  # style -> an architecture transformers builds it for


def vocabulary():
    """(tokens, scores, types): control tokens, the 256 byte tokens, then BPE pieces best first."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    bpe.train_from_iterator([CORPUS], trainers.BpeTrainer(vocab_size=400, show_progress=False))
    pieces = [t for t, _ in sorted(bpe.get_vocab().items(), key=lambda kv: kv[1])]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["  ", "   "] + pieces
    types = [2, 3, 3] + [6] * 256 + [1, 1] + [1] * len(pieces)
    scores = [0.0] * (3 + 256) + [-1.0, -2.0] + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def main():
    tokens, scores, types = vocabulary()
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": scores,
            "tokenizer.ggml.token_type": types, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}
    expected = {}
    for style, arch in STYLES.items():
        tokenizer, _ = convert_gguf_tokenizer(arch, {"tokenizer_type": "llama", "tokens": tokens, "scores": scores, "token_type": types})
        expected[style] = [tokenizer.encode(t, add_special_tokens=False).ids for t in TEXTS]
    OUT.write_text(json.dumps({"meta": meta, "texts": TEXTS, "ids": expected}))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
