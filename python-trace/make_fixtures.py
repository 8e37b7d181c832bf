"""Writes the tiny random Hugging Face models under tests/fixtures/ with transformers'
reference logits (fixed seed, float32):  python make_fixtures.py [NAME…] (default: all)

Each fixture folder: config.json, safetensors weights (some sharded),
tokenizer.json + tokenizer_config.json (a small byte-level BPE with a ChatML template),
and reference.json: the prompt, then logits for the prefill (every position) and for
each greedy decode step that follows it."""
import json
import pathlib
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tiny import CONFIGS, tiny_model

OUT = pathlib.Path(__file__).parent.parent / "tests" / "fixtures"
PROMPT = [5, 17, 3, 88, 42, 9, 261, 100]
DECODE_STEPS = 4
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
TEXT = "The quick brown fox jumps over the lazy dog. What is the capital of France? Paris is. " * 20


def tokenizer(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT], trainer)
    return tok


def save_weights(folder, state, shards):
    names = sorted(state)
    if shards == 1:
        save_file({n: state[n].contiguous() for n in names}, folder / "model.safetensors")
        return
    index = {"metadata": {}, "weight_map": {}}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = names[i::shards]
        save_file({n: state[n].contiguous() for n in part}, folder / file)
        index["weight_map"] |= {n: file for n in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))


def main(names):
    for i, name in enumerate(CONFIGS):
        if names and name not in names:
            continue
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        model, kiln = tiny_model(name)
        config = model.config.to_dict()
        config.update(bos_token_id=0, eos_token_id=2, architectures=kiln.SPEC["hf_architectures"])
        (folder / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
        state = {k: v for k, v in model.state_dict().items() if not (config["tie_word_embeddings"] and k == "lm_head.weight")}
        save_weights(folder, state, shards=1 + i % 3)
        tokenizer(config["vocab_size"]).save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "add_bos_token": False, "chat_template": CHATML}, indent=1))

        (folder / "reference.json").write_text(json.dumps(reference(model)))
        print(f"wrote {folder}")


def reference(model):
    """The prompt, the model's logits at every prefill position, then each greedy decode step's."""
    steps, seq = [], list(PROMPT)
    with torch.no_grad():
        out = model(torch.tensor([seq]), use_cache=True)
        prefill = out.logits[0].tolist()
        for _ in range(DECODE_STEPS):
            token = int(out.logits[0, -1].argmax())
            seq.append(token)
            out = model(torch.tensor([[token]]), past_key_values=out.past_key_values, use_cache=True)
            steps.append({"token": token, "logits": out.logits[0, -1].tolist()})
    return {"prompt": PROMPT, "prefill": prefill, "decode": steps}


if __name__ == "__main__":
    main(sys.argv[1:])
