#!/usr/bin/env bash
# make bench-formats: the default model (SmolLM2-135M) in each format Kiln stores — its float
# folder as is, `--quant bf16|q8_0|q4_k|q4_0`, and the Q4_1 GGUF it ships as — side by side in one
# run: artifact size, perplexity (tests/fixtures/perplexity.txt, 128-token windows), prefill of a
# 525-token prompt and decode of 64 tokens after a one-token prompt (medians of 3, interleaved).
set -euo pipefail
KILN=$1 HF=$2 GGUF=$3
DIR=$(mktemp -d); trap 'rm -rf "$DIR"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
formats="f32 bf16 q8_0 q4_k q4_0 gguf"
for f in $formats; do
  case $f in
    f32) $KILN compile "$HF" -o "$DIR/$f.kiln" 2>/dev/null ;;
    gguf) $KILN compile "$GGUF" -o "$DIR/$f.kiln" 2>/dev/null ;;
    *) $KILN compile "$HF" --quant "$f" -o "$DIR/$f.kiln" 2>/dev/null ;;
  esac
done
PROMPT=$DIR/prompt.txt
$KILN detokenize "$DIR/gguf.kiln" $(.venv/bin/python -c 'print(" ".join(str(1000 + i % 500) for i in range(512)))') > "$PROMPT"
declare -A pp tg
for i in 1 2 3; do
  for f in $formats; do
    out=$($KILN run "$DIR/$f.kiln" --no-chat --max-tokens 1 --verbose --file "$PROMPT" 2>&1 >/dev/null | grep '^prompt ')
    pp[$f]+="$(echo "$out" | sed -n 's/.*prefill \([0-9.]*\) tok\/s.*/\1/p') "
    out=$($KILN run "$DIR/$f.kiln" --no-chat --max-tokens 64 --verbose "The" 2>&1 >/dev/null | grep '^prompt ')
    tg[$f]+="$(echo "$out" | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p') "
  done
done
lscpu | sed -n 's/^Model name: *//p' | head -1
echo "| format | artifact | perplexity | prefill 525 tokens | decode |"
echo "|---|---|---|---|---|"
for f in $formats; do
  size=$(du -m "$DIR/$f.kiln" | cut -f1)
  ppl=$($KILN perplexity "$DIR/$f.kiln" tests/fixtures/perplexity.txt --ctx 128 2>/dev/null | sed -n 's/^ppl = \([0-9.]*\).*/\1/p')
  name=$f; [ $f = gguf ] && name="$(basename "$GGUF") (as shipped)"; [ $f = f32 ] && name="f32 (the folder)"
  echo "| $name | ${size} MB | $ppl | $(echo ${pp[$f]} | tr ' ' '\n' | median) tok/s | $(echo ${tg[$f]} | tr ' ' '\n' | median) tok/s |"
done
