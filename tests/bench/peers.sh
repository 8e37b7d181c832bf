#!/usr/bin/env bash
# make bench-peers: Kiln beside llama.cpp (llama-bench, llama-perplexity, llama-server from the
# llama.cpp vendored in PyPI's llama-cpp-python sdist, built Release with -DGGML_NATIVE=ON), on
# the same GGUF files, in one run on this machine: prefill 512, decode at depth 0 and after 512
# tokens, perplexity (llama-perplexity's definition), and serving N concurrent streams.
# Every Kiln figure is a median of 3; llama-bench's are its own mean of 3. Models after
# `--no-serve` skip the serving comparison; `--torch DIR` measures PyTorch bf16 on a Hugging Face
# folder (tests/bench/torch_speed.py) in the same run. Every figure is also written as JSON to
# $PEERS_JSON (default target/peers/bench-peers.json).
set -euo pipefail
KILN=$1 LLAMA=$2; shift 2
serve=1 torch=0 records=()
JSON=${PEERS_JSON:-target/peers/bench-peers.json}
record() { records+=("$1"); printf '[%s]\n' "$(IFS=,; echo "${records[*]}")" > "$JSON"; }
ratio() { echo "scale=2; $1 / $2" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lscpu | sed -n 's/^Model name: *//p' | head -1
for MODEL in "$@"; do
  if [ "$MODEL" = --no-serve ]; then serve=0; continue; fi
  if [ "$MODEL" = --torch ]; then torch=1; continue; fi
  if [ $torch = 1 ]; then
    torch=0
    read -r t_pp t_tg < <(.venv/bin/python tests/bench/torch_speed.py "$MODEL" 2>/dev/null)
    echo "== $(basename "$MODEL") in PyTorch $(.venv/bin/python -c 'import torch; print(torch.__version__)') bf16: prefill 512 $t_pp tok/s, decode depth 0 $t_tg tok/s"
    record "{\"model\": \"$(basename "$MODEL")\", \"engine\": \"pytorch-bf16\", \"prefill_512\": $t_pp, \"decode_0\": $t_tg}"
    continue
  fi
  ART=$(mktemp -d)/peer.kiln
  $KILN compile "$MODEL" -o "$ART" 2>/dev/null
  echo "== $(basename "$MODEL")"
  # llama-bench: pp512, tg64 at depth 0 and 512
  read -r l_pp l_tg0 l_tg512 < <($LLAMA/llama-bench -m "$MODEL" -t "$(nproc)" -p 512 -n 64 -d 0,512 -r 3 -o json 2>/dev/null | .venv/bin/python -c '
import json, sys
r = json.load(sys.stdin)
pick = lambda p, n, d: next(x["avg_ts"] for x in r if x["n_prompt"] == p and x["n_gen"] == n and x.get("n_depth", 0) == d)
print(round(pick(512, 0, 0), 1), round(pick(0, 64, 0), 1), round(pick(0, 64, 512), 1))')
  # Kiln: a 512-token prompt (prefill, then decode after it) and a one-token prompt (decode at depth 0)
  PROMPT=$(mktemp); $KILN detokenize "$ART" $(.venv/bin/python -c 'print(" ".join(str(1000 + i % 500) for i in range(512)))') > "$PROMPT"
  k_pp=() k_tg512=() k_tg0=()
  for i in 1 2 3; do
    out=$($KILN run "$ART" --no-chat --max-tokens 64 --verbose --file "$PROMPT" 2>&1 >/dev/null | grep '^prompt ')
    k_pp+=("$(echo "$out" | sed -n 's/.*prefill \([0-9.]*\) tok\/s.*/\1/p')"); k_tg512+=("$(echo "$out" | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p')")
    out=$($KILN run "$ART" --no-chat --max-tokens 64 --verbose "The" 2>&1 >/dev/null | grep '^prompt ')
    k_tg0+=("$(echo "$out" | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p')")
  done
  kp=$(printf '%s\n' "${k_pp[@]}" | median) k0=$(printf '%s\n' "${k_tg0[@]}" | median) k512=$(printf '%s\n' "${k_tg512[@]}" | median)
  echo "prefill 512      kiln $kp tok/s, llama.cpp $l_pp -> $(ratio "$kp" "$l_pp")×"
  echo "decode depth 0   kiln $k0 tok/s, llama.cpp $l_tg0 -> $(ratio "$k0" "$l_tg0")×"
  echo "decode depth 512 kiln $k512 tok/s, llama.cpp $l_tg512 -> $(ratio "$k512" "$l_tg512")×"
  # perplexity as llama-perplexity defines it, 128-token windows
  l_ppl=$($LLAMA/llama-perplexity -m "$MODEL" -f tests/fixtures/perplexity.txt -c 128 -b 128 -t "$(nproc)" 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
  k_ppl=$($KILN perplexity "$ART" tests/fixtures/perplexity.txt --ctx 128 --llama-cpp 2>/dev/null | sed -n 's/^ppl = \([0-9.]*\).*/\1/p')
  echo "perplexity       kiln $k_ppl, llama-perplexity $l_ppl -> $(ratio "$k_ppl" "$l_ppl")×"
  record "{\"model\": \"$(basename "$MODEL")\", \"engine\": \"kiln\", \"prefill_512\": $kp, \"decode_0\": $k0, \"decode_512\": $k512, \"perplexity\": $k_ppl}"
  record "{\"model\": \"$(basename "$MODEL")\", \"engine\": \"llama.cpp\", \"prefill_512\": $l_pp, \"decode_0\": $l_tg0, \"decode_512\": $l_tg512, \"perplexity\": $l_ppl}"
  # serving: the same load against each server
  [ $serve = 1 ] || continue
  for server in kiln llama; do
    LOG=$(mktemp)
    if [ $server = kiln ]; then
      $KILN serve "$ART" --parallel 16 --ctx 1024 --port 0 2> "$LOG" & pid=$!
      until grep -q 'http://' "$LOG"; do sleep 0.2; done
      ADDR=$(grep -o 'http://[0-9.:]*' "$LOG")
    else
      $LLAMA/llama-server -m "$MODEL" --parallel 16 -c 16384 -t "$(nproc)" --port 8765 > "$LOG" 2>&1 & pid=$!
      ADDR=http://127.0.0.1:8765
      until curl -sf "$ADDR/health" >/dev/null; do sleep 0.5; done
    fi
    while read -r line; do
      echo "$line"
      read -r n rate ttft < <(echo "$line" | sed -n 's/.* \([0-9]*\) streams *\([0-9.]*\) tok\/s.*first token \([0-9.]*\) s.*/\1 \2 \3/p')
      record "{\"model\": \"$(basename "$MODEL")\", \"engine\": \"$server\", \"streams\": $n, \"aggregate_tok_s\": $rate, \"ttft_s\": $ttft}"
    done < <(.venv/bin/python tests/bench/concurrent.py "$ADDR" "$server" 1 8 16)
    kill $pid; wait $pid 2>/dev/null || true
  done
done
