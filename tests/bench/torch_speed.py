"""PyTorch's speed on a Hugging Face folder in bf16 (transformers, every core), for `make
bench-peers`: prefill of a 512-token prompt and greedy decode of 64 tokens after a one-token
prompt, medians of 3.

    python torch_speed.py MODEL_DIR"""
import os
import statistics
import sys
import time

sys.path.pop(0)  # this folder's concurrent.py would shadow the standard library's for torch

import torch
from transformers import AutoModelForCausalLM

torch.set_num_threads(os.cpu_count())
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16).eval()
prompt = torch.tensor([[1000 + i % 500 for i in range(512)]])
prefill, decode = [], []
with torch.inference_mode():
    for _ in range(3):
        start = time.perf_counter()
        model(prompt)
        prefill.append(512 / (time.perf_counter() - start))
        one = torch.tensor([[1000]])
        start = time.perf_counter()
        model.generate(one, max_new_tokens=65, min_new_tokens=65, do_sample=False)
        total = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(one, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        decode.append(64 / (total - (time.perf_counter() - start)))
print(f"{statistics.median(prefill):.1f} {statistics.median(decode):.1f}")
