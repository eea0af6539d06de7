#!/usr/bin/env bash
# Tiles on threads: the MLP kernel (784-512-512-10 tanh, f32, full K, wrt all parameters) at
# B1 = B2 = 256 with 1 and 2 threads; prints the median wall time of 5 runs each and the ratio.
# Needs a python3 with numpy (for the inputs). Usage: benches/threads.sh
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p jjt-cli
d=$(mktemp -d)
python3 - "$d" <<'PY'
import sys, numpy as np
d = sys.argv[1]; r = np.random.default_rng(0)
for n, s in [("w0", (784, 512)), ("b0", (512,)), ("w1", (512, 512)), ("b1", (512,)), ("w2", (512, 10)), ("b2", (10,))]:
    np.save(f"{d}/{n}.npy", (r.standard_normal(s) / np.sqrt(s[0])).astype(np.float32))
for n in ("xa", "xb"):
    np.save(f"{d}/{n}.npy", r.standard_normal((256, 784)).astype(np.float32))
PY
args=(kernel examples/models/mlp.jjt --wrt w0,b0,w1,b1,w2,b2 --x1 "x=$d/xa.npy" --x2 "x=$d/xb.npy" --quiet -o "$d/k.npy")
for n in w0 b0 w1 b1 w2 b2; do args+=(--shared "$n=$d/$n.npy"); done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for t in 1 2; do
  for i in 1 2 3 4 5; do
    s=$(date +%s.%N); ./target/release/jjt "${args[@]}" --threads $t; e=$(date +%s.%N)
    echo "$e - $s" | bc
  done | median > "$d/t$t"
  echo "threads=$t median $(cat "$d/t$t") s"
done
echo "speedup 2 vs 1 thread: $(echo "scale=2; $(cat "$d/t1") / $(cat "$d/t2")" | bc)"
rm -rf "$d"
