#!/usr/bin/env bash
# make bench: compile time, load time, prefill and decode tok/s (median of 5 runs), peak RSS,
# and decode's share of the memory-bandwidth roofline measured in the same run; the same model as
# an MLX folder beside it and beside mlx_lm (when a third argument names the folder); serving.
set -euo pipefail
KILN=$1 MODEL=$2 MLX=${3:-}
ART=$(mktemp -d)/bench.kiln
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# the tok/s figure named $2 (prefill, decode) in `kiln run --verbose` output $1
rate() { echo "$1" | sed -n "s/.*$2 \([0-9.]*\) tok\/s.*/\1/p"; }

start=$(date +%s.%N); $KILN compile "$MODEL" -o "$ART" 2>/dev/null; end=$(date +%s.%N)
echo "compile        $(echo "$end - $start" | bc) s"

PROMPT=$(printf 'The history of the city of Paris begins %.0s' {1..8})
prefill=() decode=() rss=()
for i in 1 2 3 4 5; do
  out=$( { /usr/bin/time -f "RSS %M" $KILN run "$ART" --no-chat --max-tokens 64 --verbose "$PROMPT" >/dev/null; } 2>&1 )
  prefill+=("$(rate "$out" prefill)") decode+=("$(rate "$out" decode)")
  rss+=("$(echo "$out" | sed -n 's/^RSS \([0-9]*\)/\1/p')")
done
load=$( { /usr/bin/time -f "%e" $KILN run "$ART" --no-chat --max-tokens 1 "a" >/dev/null; } 2>&1 | tail -1)
p=$(printf '%s\n' "${prefill[@]}" | median); d=$(printf '%s\n' "${decode[@]}" | median); r=$(printf '%s\n' "${rss[@]}" | median)
echo "load+1 token   ${load} s"
echo "prefill        ${p} tok/s (median of 5, ${#PROMPT} chars prompt)"
echo "decode         ${d} tok/s (median of 5)"
echo "peak RSS       $((r / 1024)) MB"

# A chat's second turn prefills only itself: its time to first token, median of 5.
ttft=()
for i in 1 2 3 4 5; do
  second=$(printf 'Tell me about Paris.\nAnd about Rome?\n' | $KILN chat "$ART" --max-tokens 32 -v 2>&1 >/dev/null | grep '^prompt ' | sed -n 2p)
  ttft+=("$(echo "$second" | sed -n 's/.*time to first token \([0-9.]*\) s.*/\1/p')")
done
echo "chat turn 2    time to first token $(printf '%s\n' "${ttft[@]}" | median) s (median of 5; ${second%%,*})"

# A busy machine: one `yes` per core competing, decode and time to first token with the default
# thread count against the better of one thread and all threads (KILN_THREADS set by hand),
# measured under the same load, interleaved, median of 5.
CORES=$(nproc)
busy=(); for i in $(seq "$CORES"); do yes > /dev/null & busy+=($!); done
trap 'kill "${busy[@]}" 2>/dev/null' EXIT
declare -A bdec bttft
for i in 1 2 3 4 5; do
  for threads in default 1 "$CORES"; do
    env=(); [ "$threads" != default ] && env=(KILN_THREADS="$threads")
    out=$(env "${env[@]}" $KILN run "$ART" --no-chat --max-tokens 64 --verbose "$PROMPT" 2>&1 >/dev/null | grep '^prompt ')
    bdec[$threads]+="$(echo "$out" | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p') "
    bttft[$threads]+="$(echo "$out" | sed -n 's/.*time to first token \([0-9.]*\) s.*/\1/p') "
  done
done
kill "${busy[@]}" 2>/dev/null; trap - EXIT
m() { tr ' ' '\n' | grep . | median; }
d_def=$(echo ${bdec[default]} | m) d_one=$(echo ${bdec[1]} | m) d_all=$(echo ${bdec[$CORES]} | m)
t_def=$(echo ${bttft[default]} | m) t_one=$(echo ${bttft[1]} | m) t_all=$(echo ${bttft[$CORES]} | m)
d_best=$(printf '%s\n' "$d_one" "$d_all" | sort -n | tail -1); t_best=$(printf '%s\n' "$t_one" "$t_all" | sort -n | head -1)
echo "busy machine   ($CORES × yes) decode ${d_def} tok/s = $(echo "scale=0; 100 * $d_def / $d_best" | bc)% of the better of 1 thread (${d_one}) and ${CORES} threads (${d_all}); first token ${t_def} s = $(printf '%.2f' "$(echo "scale=3; $t_def / $t_best" | bc)")× the better (${t_one}, ${t_all})"

# This machine's read bandwidth, now (kiln info: every thread streams a 1 GiB buffer with its widest loads, best of 4),
# and the decode roofline it implies for the bytes one token reads.
read -r bw wbytes roof flops < <($KILN info "$ART" --json | .venv/bin/python -c 'import json, sys
r = json.load(sys.stdin)
print(round(r["machine"]["read_bandwidth_bytes_per_s"] / 1e9, 1), round(r["weight_bytes_per_token"] / 1e6, 1), round(r["machine"]["decode_roofline_tok_s"], 1), r["matmul_flops_per_token"])')
echo "memory bw      ${bw} GB/s (all threads, measured now)"
echo "decode roofline ${roof} tok/s for ${wbytes} MB/token -> $(echo "scale=0; 100 * $d / $roof" | bc)% of it"

# Prefill is compute-bound: its matmul GFLOP/s against this machine's f32 GEMM peak, measured now
# (numpy's BLAS on all threads, 2048² × 2048, best of 5).
peak=$(.venv/bin/python - <<'PY'
import time
import numpy as np
a = np.random.rand(2048, 2048).astype(np.float32)
best = 0
for _ in range(5):
    t = time.perf_counter(); a @ a; best = max(best, 2 * 2048**3 / (time.perf_counter() - t))
print(round(best / 1e9, 1))
PY
)
achieved=$(echo "scale=1; $p * $flops / 1000000000" | bc)
echo "prefill compute ${achieved} GFLOP/s of matmuls vs ${peak} GFLOP/s f32 GEMM peak (numpy BLAS) -> $(echo "scale=0; 100 * $achieved / $peak" | bc)%"
# ... and against the 8-bit dot-product peak its integer kernels use (tests/bench/peak.c): VNNI's
# vpdpbusd, or AVX2's vpmaddubsw where the CPU has no VNNI
PEAK=$(dirname "$ART")/peak
gcc -O2 -pthread tests/bench/peak.c -o "$PEAK"
if grep -qw avx512_vnni /proc/cpuinfo; then dot=(dot vpdpbusd); else dot=(maddubs vpmaddubsw); fi
dpeak=$("$PEAK" "${dot[0]}")
echo "prefill compute ${achieved} GOP/s of matmuls vs ${dpeak} GOP/s ${dot[1]} peak (every thread, from registers) -> $(echo "scale=0; 100 * $achieved / $dpeak" | bc)%"
# ... and against the bf16 AMX peak where the CPU has AMX: passes of 64 rows and more run on its
# tiles. Prefill of ~512 tokens with AMX and without (KILN_AMX=0), medians of 5, interleaved.
if grep -qw amx_bf16 /proc/cpuinfo && apeak=$("$PEAK" amx); then
  echo "prefill compute ${achieved} GFLOP/s of matmuls vs ${apeak} GFLOP/s bf16 AMX peak (every thread, from tile registers) -> $(echo "scale=0; 100 * $achieved / $apeak" | bc)%"
  on=() off=() LONG=$(printf 'The history of the city of Paris begins %.0s' {1..64})
  for i in 1 2 3 4 5; do
    on+=("$(rate "$($KILN run "$ART" --no-chat --max-tokens 1 --verbose "$LONG" 2>&1 >/dev/null)" prefill)")
    off+=("$(rate "$(KILN_AMX=0 $KILN run "$ART" --no-chat --max-tokens 1 --verbose "$LONG" 2>&1 >/dev/null)" prefill)")
  done
  a=$(printf '%s\n' "${on[@]}" | median) b=$(printf '%s\n' "${off[@]}" | median)
  echo "prefill AMX    ${a} tok/s with AMX tiles, ${b} tok/s without (KILN_AMX=0) -> $(echo "scale=2; $a / $b" | bc)×"
fi

# Long context: a prompt of ~3,900 tokens (median of 3): its prefill, and decode after it against
# decode at depth 0 above (the cache then holds as many bytes per token as SmolLM2's weights).
DEEP=$(printf 'The history of the city of Paris begins %.0s' {1..480})
lp=() ld=()
for i in 1 2 3; do
  out=$($KILN run "$ART" --no-chat --max-tokens 64 --verbose "$DEEP" 2>&1 >/dev/null | grep '^prompt ')
  lp+=("$(rate "$out" prefill)") ld+=("$(rate "$out" decode)")
done
LP=$(printf '%s\n' "${lp[@]}" | median) LD=$(printf '%s\n' "${ld[@]}" | median)
echo "long context   prefill ${LP} tok/s of a $(echo "$out" | sed -n 's/^prompt \([0-9]*\) tokens.*/\1/p')-token prompt; decode after it ${LD} tok/s, $(echo "scale=2; $d / $LD" | bc)× slower than at depth 0 (median of 3)"

# The same model as an MLX 4-bit folder (make smollm2-mlx), interleaved with the default artifact,
# medians of 5; and mlx_lm.generate on that folder (MLX's Linux CPU backend), median of 3.
if [ -n "$MLX" ]; then
  MLX_ART=$(dirname "$ART")/mlx.kiln
  $KILN compile "$MLX" -o "$MLX_ART" 2>/dev/null
  mp=() md=() dp=() dd=() lp=() ld=()
  for i in 1 2 3 4 5; do
    a=$($KILN run "$ART" --no-chat --max-tokens 64 --verbose "$PROMPT" 2>&1 >/dev/null); b=$($KILN run "$MLX_ART" --no-chat --max-tokens 64 --verbose "$PROMPT" 2>&1 >/dev/null)
    dp+=("$(rate "$a" prefill)") dd+=("$(rate "$a" decode)") mp+=("$(rate "$b" prefill)") md+=("$(rate "$b" decode)")
  done
  for i in 1 2 3; do
    out=$(.venv/bin/python -c "import sys; from mlx_lm import load, generate; m, t = load(sys.argv[1]); generate(m, t, t.encode(sys.argv[2]), max_tokens=64, verbose=True)" "$MLX" "$PROMPT" 2>&1)
    lp+=("$(echo "$out" | sed -n 's/^Prompt: .*, \([0-9.]*\) tokens-per-sec/\1/p')") ld+=("$(echo "$out" | sed -n 's/^Generation: .*, \([0-9.]*\) tokens-per-sec/\1/p')")
  done
  med() { printf '%s\n' "$@" | median; }
  MP=$(med "${mp[@]}") MD=$(med "${md[@]}") DP=$(med "${dp[@]}") DD=$(med "${dd[@]}") LP=$(med "${lp[@]}") LD=$(med "${ld[@]}")
  echo "mlx 4-bit      prefill ${MP} tok/s ($(echo "scale=2; $MP / $DP" | bc)× the default artifact's ${DP}), decode ${MD} tok/s ($(echo "scale=2; $MD / $DD" | bc)× ${DD}); medians of 5, interleaved"
  echo "mlx_lm         prefill ${LP} tok/s, decode ${LD} tok/s on the same folder -> Kiln $(echo "scale=1; $MP / $LP" | bc)× and $(echo "scale=1; $MD / $LD" | bc)× (median of 3)"
fi

# Serving: aggregate decode tok/s of N concurrent streamed greedy completions (128 tokens each,
# distinct prompts) against one `kiln serve --parallel 16`, and the median time to first token
# under that load; median of 3 rounds per N.
PORT_FILE=$(mktemp)
$KILN serve "$ART" --parallel 16 --ctx 1024 --port 0 2> "$PORT_FILE" & server=$!
trap 'kill $server 2>/dev/null' EXIT
until grep -q 'http://' "$PORT_FILE"; do sleep 0.2; done
ADDR=$(grep -o 'http://[0-9.:]*' "$PORT_FILE")
.venv/bin/python tests/bench/concurrent.py "$ADDR" serve 1 4 8 16
kill $server 2>/dev/null; trap - EXIT
