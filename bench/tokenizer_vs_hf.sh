#!/usr/bin/env bash
# Tokenizer throughput of livecc.c against HF tokenizers, both on one thread, in one script:
#   1. encode the 10k fixture lines (tests/fixtures/tokenizer/cases.safetensors), repeated to >= MB megabytes,
#      with the qwen2_like tokenizer (8k vocab): MB/s of each and the ratio (HF: encode_batch with
#      RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false; its time includes building the Python Encodings);
#   2. the same with a synthetic tokenizer of Qwen2's size (151,643 regular tokens, 151,387 random merges,
#      Qwen2's special tokens), and the load time of each tokenizer.
# Needs the build (bench_tokenizer) and the reference venv (see tests/reference/requirements.txt):
#   bench/tokenizer_vs_hf.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-ref/bin/python}
BENCH=${BENCH:-build/bin/bench_tokenizer}
MB=${1:-5}
TOK=tests/fixtures/tokenizer/qwen2_like/tokenizer.json
CASES=tests/fixtures/tokenizer/cases.safetensors
[ -x "$BENCH" ] || { echo "build first: cmake --build build --target bench_tokenizer"; exit 1; }
[ -x "$PY" ] || { echo "no reference venv at $PY (set PY=...)"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false

# HF: prints hf_load_s=... and, with a cases file, hf_mb_per_s=...
hf() {
  "$PY" - "$@" <<'EOF'
import math, sys, time
from safetensors.numpy import load_file
from tokenizers import Tokenizer
path, cases, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0 = time.perf_counter()
tok = Tokenizer.from_file(path)
print(f"hf_load_s={time.perf_counter() - t0:.4f}")
if cases != "-":
  c = load_file(cases)
  text, off = c["text"].tobytes(), c["text_off"]
  lines = [text[off[i]:off[i + 1]].decode() for i in range(len(off) - 1)]
  batch = lines * math.ceil(mb * 1e6 / len(text))
  t0 = time.perf_counter()
  tok.encode_batch(batch)
  dt = time.perf_counter() - t0
  print(f"hf_mb={len(text) * len(batch) / len(lines) / 1e6:.2f} hf_s={dt:.3f} hf_mb_per_s={len(text) * len(batch) / len(lines) / 1e6 / dt:.2f}")
EOF
}

# A tokenizer.json of Qwen2's size: the qwen2_like configuration, 256 byte tokens + 151,387 merges of random
# pairs of tokens (at most 12 characters), then the 14 special tokens from id 151,643 on.
"$PY" - "$TOK" "$WORK/big.json" <<'EOF'
import json, random, sys
spec = json.load(open(sys.argv[1], encoding="utf-8"))
rng = random.Random(0)
toks = sorted(t for t in spec["model"]["vocab"] if len(t) == 1)
assert len(toks) == 256
vocab = {t: i for i, t in enumerate(toks)}
merges = []
while len(merges) < 151387:
  a, b = rng.choice(toks), rng.choice(toks)
  if len(a) + len(b) <= 12 and a + b not in vocab:
    vocab[a + b] = len(vocab)
    toks.append(a + b)
    merges.append([a, b])
spec["model"]["vocab"], spec["model"]["merges"] = vocab, merges
for i, t in enumerate(spec["added_tokens"]):
  t["id"] = len(vocab) + i
json.dump(spec, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF

val() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); one thread each"
printf "%-22s %10s %10s %8s %12s %12s\n" tokenizer "C MB/s" "HF MB/s" "C/HF" "C load s" "HF load s"
for t in "$TOK" "$WORK/big.json"; do
  c_out=$("$BENCH" "$t" "$CASES" "$MB")
  hf_out=$(hf "$t" "$CASES" "$MB")
  c=$(echo "$c_out" | val c_mb_per_s)
  h=$(echo "$hf_out" | val hf_mb_per_s)
  name=$([ "$t" = "$TOK" ] && echo "qwen2_like (8k)" || echo "synthetic (151k)")
  printf "%-22s %10.2f %10.2f %8.2f %12.4f %12.4f\n" "$name" "$c" "$h" "$(awk -v a="$c" -v b="$h" 'BEGIN { print a / b }')" \
    "$(echo "$c_out" | val c_load_s)" "$(echo "$hf_out" | val hf_load_s)"
done
