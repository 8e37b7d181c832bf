"""Aggregate decode speed of an OpenAI-compatible server under N concurrent streamed greedy
completions (128 tokens each, distinct prompts), and the median time to first token; median of
3 rounds per N. Used by `make bench` (kiln serve) and `make bench-peers` (llama-server too).

    python concurrent.py http://127.0.0.1:8080 LABEL 1 4 8 16"""
import json
import statistics
import sys
import threading
import time
import urllib.request


def stream(addr, i, out):
    body = json.dumps({"prompt": f"Story number {i}. Once upon a time, in a city by the sea,", "max_tokens": 128, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    start, first, tokens, pieces = time.perf_counter(), None, None, 0
    request = urllib.request.Request(addr + "/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        for line in r:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                pieces += 1
                first = first or time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    out[i] = (first or 0.0, tokens if tokens is not None else pieces)


def main(addr, label, counts):
    single = None
    for n in counts:
        rates, ttfts = [], []
        for _ in range(3):
            out = [None] * n
            threads = [threading.Thread(target=stream, args=(addr, i, out)) for i in range(n)]
            t = time.perf_counter()
            [th.start() for th in threads]
            [th.join() for th in threads]
            wall = time.perf_counter() - t
            rates.append(sum(o[1] for o in out) / wall)
            ttfts.append(statistics.median(o[0] for o in out))
        rate, ttft = statistics.median(rates), statistics.median(ttfts)
        single = single or rate
        print(f"{label} {n:2d} streams  {rate:6.1f} tok/s aggregate = {rate / single:4.2f}× one stream; time to first token {ttft:.3f} s (median of 3)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(n) for n in sys.argv[3:]])
