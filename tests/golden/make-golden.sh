#!/bin/sh
# make-golden.sh - regenerate the golden outputs of rbm-train, encode,
# rbm-sample and ais-estimate kept in tests/golden/, against which
# tests/golden.bats checks the current binaries byte for byte.
#
# When to run it: only when a change is MEANT to alter the numbers (a new
# training rule, a different default, a format change) or when the
# reference machine's BLAS kernel changes; never to make a failing
# tests/golden.bats pass after a refactor that should not change results
# (that failure is the point).  Run it from a default build (`make -j2`:
# gcc -O2, bin/ and build/), then commit tests/golden/ with the change:
#
#     make -j2 && OPENBLAS_NUM_THREADS=1 tests/golden/make-golden.sh
#
# Every tool runs with -j 1 (one thread: the models depend on the thread
# count) and OPENBLAS_NUM_THREADS=1; the script refuses to run without the
# latter.  It records in KERNEL the BLAS kernel the tools use (as printed by
# $BUILD/bench/gemm-rate); the bytes are only expected to match where that
# kernel and the same build (default: build/, gcc -O2) are used.
#
# usage: make-golden.sh [-o OUTDIR] [CASE]...
#   Without CASE every case runs, in order.  Inputs (the in/ folder: a
#   binarised crop of examples/data/mnist-2k.tz and small synthetic sets
#   made with numpy) are made only when tests/golden/in/ is missing:
#   delete it to make them again.  Cases read their inputs - data, and the
#   models and codes that earlier cases produced - from tests/golden/, and
#   write to OUTDIR (default tests/golden/ itself); tests/golden.bats runs
#   one case at a time into a temporary OUTDIR.
#   Environment: BIN (default bin), BUILD (default build), as tests/run.
#   make-golden.sh --list prints the case names.
set -eu

G=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$G/../.." && pwd)
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
case $BIN in /*) ;; *) BIN="$TOP/$BIN" ;; esac
case $BUILD in /*) ;; *) BUILD="$TOP/$BUILD" ;; esac
PATH="$BIN:$PATH"
export PATH

CASES="train-bern-cd1 train-bern-pcd2 train-gauss train-gauss-sigma
train-softmax train-rsm train-gauss-hidden train-dbm-bottom train-dbm-top
train-tiny
encode-bern-cd1 encode-bern-pcd2 encode-gauss encode-gauss-sigma
encode-softmax encode-rsm encode-gauss-hidden encode-dbm-bottom
encode-dbm-top
sample-bern sample-gauss sample-softmax
ais-bern ais-exact"

out=$G
while [ $# -gt 0 ]; do
    case $1 in
    -o) out=$2; shift 2 ;;
    --list) echo $CASES; exit 0 ;;
    -*) echo "make-golden.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || set -- $CASES
if [ "${OPENBLAS_NUM_THREADS:-}" != 1 ]; then
    echo "make-golden.sh: set OPENBLAS_NUM_THREADS=1" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# the BLAS kernel, e.g. "OpenBLAS 0.3.21 SkylakeX"
kernel() { "$BUILD/bench/gemm-rate" -j 1 | sed -n 's/^kernel: \(.*\), [0-9]* threads$/\1/p'; }

inputs() {
    mkdir -p "$G/in"
    t=$(mktemp -d)
    # 250 binarised digits, image rows 9..15 (196 pixels): 200 to train, 50
    # to validate
    tensor head -n 250 "$TOP/examples/data/mnist-2k.tz" | tensor binarize |
        tensor export csv | tensor import csv --dtype u8 |
        tensor slice -c 252:448 > "$t/m.tz"
    tensor slice -r 0:200 "$t/m.tz" > "$G/in/mnist.tz"
    tensor slice -r 200:250 "$t/m.tz" > "$G/in/mnist-valid.tz"
    "$BUILD/tests/tzhelp" rand 100 10 7 > "$G/in/tiny.tz"
    /usr/bin/python3 - "$t" <<'EOF'
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(20240501)
# gaussian mixture: 3 clusters in 12 dimensions, standardised
c = r.normal(0, 2, (3, 12))
g = c[r.integers(0, 3, 300)] + r.normal(0, 0.5, (300, 12))
g = (g - g.mean(0)) / g.std(0)
np.savetxt(d + "/gauss.csv", g, fmt="%.6f", delimiter=",")
# softmax: 4 groups of 5 categories, one-hot, category tied to a class
cls = r.integers(0, 3, 300)
pref = r.integers(0, 5, (3, 4))
cat = np.where(r.random((300, 4)) < 0.7, pref[cls], r.integers(0, 5, (300, 4)))
oh = np.zeros((300, 20), int)
for gi in range(4):
    oh[np.arange(300), 5 * gi + cat[:, gi]] = 1
np.savetxt(d + "/softmax.csv", oh, fmt="%d", delimiter=",")
# bag of words: 3 topics over 30 words, 10..40 words a document
topics = np.full((3, 30), 0.02)
for t in range(3):
    topics[t, 10 * t:10 * t + 10] = 1
topics /= topics.sum(1, keepdims=True)
bow = np.array([r.multinomial(r.integers(10, 41), topics[r.integers(0, 3)])
                for _ in range(200)])
np.savetxt(d + "/bow.csv", bow, fmt="%d", delimiter=",")
EOF
    tensor import csv "$t/gauss.csv" > "$G/in/gauss.tz"
    tensor import csv --dtype u8 "$t/softmax.csv" > "$G/in/softmax.tz"
    tensor import csv "$t/bow.csv" > "$G/in/bow.tz"
    rm -rf "$t"
}

# everything relative to tests/golden: file names recorded in the outputs
# (encode.model) are then the same wherever OUTDIR is
cd "$G"
[ -d in ] || inputs
if [ "$out" = "$G" ]; then kernel > KERNEL; fi

train() {   # train NAME INPUT OPTION...: NAME.rbm
    n=$1 i=$2; shift 2
    rbm-train -q -j 1 -o "$out/$n.rbm" "$@" "$i"
}

# encode NAME INPUT: the first 40 rows of INPUT up (means, samples), the
# first 10 codes back down (means)
encode_cases() {
    n=$1 i=$2
    tensor head -n 40 "$i" | encode -q -j 1 "$n.rbm" > "$out/enc-$n-means.tz"
    tensor head -n 40 "$i" | encode -q -j 1 --sample -s 11 "$n.rbm" > "$out/enc-$n-sample.tz"
    tensor head -n 10 "enc-$n-means.tz" | encode -q -j 1 --down "$n.rbm" > "$out/enc-$n-down.tz"
}

# rbm-sample NAME INPUT CLAMP...: 4 free chains (samples, means), 4 chains
# from INPUT's rows with CLAMP (samples, means)
sample_cases() {
    n=$1 i=$2; shift 2
    rbm-sample -q -j 1 -s 5 -n 4 --steps 20 "$n.rbm" > "$out/sample-$n-free.tz"
    rbm-sample -q -j 1 -s 5 -n 4 --steps 20 --means "$n.rbm" > "$out/sample-$n-free-means.tz"
    rbm-sample -q -j 1 -s 6 -n 4 --steps 20 "$@" "$n.rbm" "$i" > "$out/sample-$n-clamp.tz"
    rbm-sample -q -j 1 -s 6 -n 4 --steps 20 --means "$@" "$n.rbm" "$i" > "$out/sample-$n-clamp-means.tz"
}

for c in "$@"; do
    case $c in
    train-bern-cd1)
        train bern-cd1 in/mnist.tz -H 16 -e 3 -s 3 -b 25 --emit \
            --log "$out/bern-cd1-log.raw" --valid in/mnist-valid.tz > "$out/bern-cd1-emit.tz"
        # the seconds column is wall time: drop it
        cut -f 1,3- "$out/bern-cd1-log.raw" > "$out/bern-cd1-log.tsv"
        rm -f "$out/bern-cd1-log.raw" ;;
    train-bern-pcd2) train bern-pcd2 in/mnist.tz -H 16 -e 2 -s 4 --pcd -k 2 -b 25 ;;
    train-gauss) train gauss in/gauss.tz -V gaussian -H 16 -e 3 -s 5 -b 25 ;;
    train-gauss-sigma) train gauss-sigma in/gauss.tz -V gaussian --learn-sigma -H 16 -e 3 -s 5 -b 25 ;;
    train-softmax) train softmax in/softmax.tz -V softmax --softmax-group 5 -H 16 -e 3 -s 6 -b 25 ;;
    train-rsm) train rsm in/bow.tz -V replicated-softmax -H 16 -e 3 -s 7 -b 25 ;;
    train-gauss-hidden) train gauss-hidden in/mnist.tz --hidden-type gaussian -l 0.01 -H 16 -e 2 -s 8 -b 25 ;;
    train-dbm-bottom) train dbm-bottom in/mnist.tz --dbm-bottom -H 16 -e 2 -s 9 -b 25 ;;
    train-dbm-top) train dbm-top bern-cd1-emit.tz --dbm-top -H 16 -e 3 -s 10 -b 50 ;;
    train-tiny) train tiny in/tiny.tz -H 8 -e 5 -s 12 -b 20 ;;
    encode-bern-cd1)
        encode_cases bern-cd1 in/mnist.tz
        tensor head -n 10 enc-bern-cd1-means.tz |
            encode -q -j 1 --down --sample -s 12 bern-cd1.rbm > "$out/enc-bern-cd1-down-sample.tz" ;;
    encode-bern-pcd2) encode_cases bern-pcd2 in/mnist.tz ;;
    encode-gauss) encode_cases gauss in/gauss.tz ;;
    encode-gauss-sigma) encode_cases gauss-sigma in/gauss.tz ;;
    encode-softmax) encode_cases softmax in/softmax.tz ;;
    encode-rsm)
        encode_cases rsm in/bow.tz
        tensor head -n 10 enc-rsm-means.tz |
            encode -q -j 1 --down -D 25 rsm.rbm > "$out/enc-rsm-down-d25.tz" ;;
    encode-gauss-hidden) encode_cases gauss-hidden in/mnist.tz ;;
    encode-dbm-bottom) encode_cases dbm-bottom in/mnist.tz ;;
    encode-dbm-top) encode_cases dbm-top bern-cd1-emit.tz ;;
    sample-bern) sample_cases bern-cd1 in/mnist-valid.tz --clamp 0:98 ;;
    sample-gauss) sample_cases gauss in/gauss.tz --clamp 0:6 ;;
    sample-softmax) sample_cases softmax in/softmax.tz --clamp-group 0:2 ;;
    ais-bern)
        ais-estimate -q -j 1 -s 13 --runs 8 --betas 300 --format tsv bern-cd1.rbm in/mnist-valid.tz > "$out/ais-bern.tsv"
        ais-estimate -q -j 1 -s 13 --runs 8 --betas 300 bern-cd1.rbm in/mnist-valid.tz > "$out/ais-bern.txt" ;;
    ais-exact)
        ais-estimate -q -j 1 --exact --format tsv tiny.rbm in/tiny.tz > "$out/ais-exact-tiny.tsv"
        ais-estimate -q -j 1 --exact --format tsv bern-cd1.rbm in/mnist-valid.tz > "$out/ais-exact-bern.tsv" ;;
    *) echo "make-golden.sh: unknown case $c" >&2; exit 2 ;;
    esac
done
