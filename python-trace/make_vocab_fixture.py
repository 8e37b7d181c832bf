"""Writes tests/fixtures/vocab/expected.json: for llama.cpp's vocab-only GGUF files of real
sentencepiece tokenizers (Llama 2's and Phi-3's, `vendor/llama.cpp/models/ggml-vocab-*.gguf` of the
llama-cpp-python==0.3.36 sdist, copied beside it with their `.inp` test texts), the ids transformers
gives each text when it loads the file:  python make_vocab_fixture.py"""
import json
import pathlib

from transformers import AutoTokenizer

VOCAB = pathlib.Path(__file__).parent.parent / "tests" / "fixtures" / "vocab"
FILES = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"]


def main():
    expected = {}
    for name in FILES:
        texts = (VOCAB / f"{name}.inp").read_text().split("\n__ggml_vocab_test__\n")
        texts[-1] = texts[-1].removesuffix("\n__ggml_vocab_test__\n").removesuffix("\n__ggml_vocab_test__")
        tok = AutoTokenizer.from_pretrained(str(VOCAB), gguf_file=name)
        expected[name] = [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in texts]
    (VOCAB / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1))
    print(f"wrote {VOCAB / 'expected.json'}")


if __name__ == "__main__":
    main()
