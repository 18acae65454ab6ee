#!/usr/bin/env bats
# rbm-train.bats - tests for rbm-train(1): learning on MNIST, a Gaussian
# mixture and a bag-of-words topic set (stated bounds), determinism,
# checkpoint/resume identity (simulated and real SIGTERM), --emit, the man
# page examples, and every bad-input error message.

bats_require_minimum_version 1.5.0

setup_file() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export TOP PY=/usr/bin/python3
    export PATH="$TOP/${BIN:-bin}:$PATH"
    export MNIST="$TOP/../shared/data/mnist"
    D="$BATS_FILE_TMPDIR"
    export D
    # binary data: 600 rows of 16 bits from 3 noisy prototypes
    $PY - "$D" <<'EOF'
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(1)
proto = (r.random((3, 16)) < 0.5).astype(int)
x = proto[r.integers(0, 3, 600)]
x = np.where(r.random(x.shape) < 0.05, 1 - x, x)
np.savetxt(d + "/bin.csv", x, fmt="%d", delimiter=",")
np.savetxt(d + "/bin8.csv", x[:50, :8], fmt="%d", delimiter=",")
# gaussian mixture: 3 clusters in 8 dimensions, standardised
c = r.normal(0, 2, (3, 8))
def mix(n):
    g = c[r.integers(0, 3, n)] + r.normal(0, 0.5, (n, 8))
    return g
g = mix(3000)
mu, sd = g.mean(0), g.std(0)
np.savetxt(d + "/gauss.csv", (g - mu) / sd, fmt="%.6f", delimiter=",")
np.savetxt(d + "/gauss_valid.csv", (mix(500) - mu) / sd, fmt="%.6f", delimiter=",")
np.savetxt(d + "/gauss_noise.csv", r.normal(0, 1, (500, 8)), fmt="%.6f", delimiter=",")
# bag of words: 3 topics over 30 words, documents of 20..60 words
topics = np.full((3, 30), 0.01)
for t in range(3):
    topics[t, 10 * t:10 * t + 10] = 1
topics /= topics.sum(1, keepdims=True)
def docs(n, uniform=False):
    out = []
    for _ in range(n):
        p = np.full(30, 1 / 30) if uniform else topics[r.integers(0, 3)]
        out.append(r.multinomial(r.integers(20, 61), p))
    return np.array(out)
np.savetxt(d + "/bow.csv", docs(1500), fmt="%d", delimiter=",")
np.savetxt(d + "/bow_valid.csv", docs(300), fmt="%d", delimiter=",")
np.savetxt(d + "/bow_noise.csv", docs(300, True), fmt="%d", delimiter=",")
EOF
    tensor import csv --dtype u8 "$D/bin.csv" > "$D/bin.tz"
    tensor import csv --dtype u8 "$D/bin8.csv" > "$D/bin8.tz"
    for f in gauss gauss_valid gauss_noise bow bow_valid bow_noise; do
        tensor import csv "$D/$f.csv" > "$D/$f.tz"
    done
}

# column N of the last line of a TSV log
last_col() { tail -n 1 "$1" | cut -f "$2"; }
first_col() { sed -n 2p "$1" | cut -f "$2"; }

@test "--help on stdout lists every option with its default, exit 0" {
    run --separate-stderr rbm-train --help
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [[ "${lines[0]}" == "Usage: rbm-train -o MODEL [OPTION]... [INPUT]" ]]
    [[ "$output" == *"--hidden N            hidden units (default: 500)"* ]]
    [[ "$output" == *"--weight-decay X      L2 coefficient on W (default: 0.0002)"* ]]
    for o in output visible hidden hidden-type softmax-group dbm-bottom dbm-top \
             epochs batch learning-rate lr-decay cd-steps pcd momentum \
             initial-momentum momentum-epochs weight-decay sparsity \
             sparsity-cost learn-sigma allow-real seed threads emit force log \
             valid checkpoint-every resume stop-after-batches quiet level; do
        [[ "$output" == *"--$o"* ]] || { echo "missing --$o"; false; }
    done
}

@test "--version" {
    run --separate-stderr rbm-train --version
    [ "$status" -eq 0 ]
    [ "$output" = "rbm-train (rbmkit) 0.1.0" ]
}

@test "usage errors exit 2 with one message line" {
    run -2 --separate-stderr rbm-train "$D/bin.tz"
    [ "${stderr_lines[0]}" = "rbm-train: no model file given (-o MODEL)" ]
    [ "${stderr_lines[1]}" = "Try 'rbm-train --help' for more information." ]
    run -2 --separate-stderr rbm-train -o "$D/x.rbm" -V poisson "$D/bin.tz"
    [ "${stderr_lines[0]}" = "rbm-train: invalid visible unit type 'poisson'" ]
    run -2 --separate-stderr rbm-train -o "$D/x.rbm" -H 0 "$D/bin.tz"
    [ "${stderr_lines[0]}" = "rbm-train: invalid hidden unit count '0': must be in [1, 1048576]" ]
    run -2 --separate-stderr rbm-train -o "$D/x.rbm" --hidden-type softmax "$D/bin.tz"
    [ "${stderr_lines[0]}" = "rbm-train: invalid hidden unit type 'softmax'" ]
    run -2 --separate-stderr rbm-train -o "$D/x.rbm" --learn-sigma "$D/bin.tz"
    [ "${stderr_lines[0]}" = "rbm-train: --learn-sigma needs --visible gaussian" ]
    run -2 --separate-stderr rbm-train -o "$D/x.rbm" "$D/bin.tz" extra
    [ "${stderr_lines[0]}" = "rbm-train: too many arguments" ]
    [ ! -e "$D/x.rbm" ]
}

@test "bernoulli RBM on MNIST: recon error below 42 after 2 epochs of 10000 images" {
    [ -f "$MNIST/train-images-idx3-ubyte.gz" ] || skip "MNIST not found in ../shared/data/mnist"
    gzip -dc "$MNIST/train-images-idx3-ubyte.gz" | tensor import idx |
        tensor head -n 10000 | tensor binarize > "$D/mnist10k.tz"
    rbm-train -q -j 1 -o "$D/mnist.rbm" -H 100 -e 2 --log "$D/mnist.tsv" "$D/mnist10k.tz"
    cat "$D/mnist.tsv"
    # an untrained model (W = 0, vbias at log-odds) scores sum p(1-p) ~ 52;
    # the numpy reference of the same algorithm gives 53.2 and 39.4
    awk 'NR == 3 { exit !($3 < 42) }' "$D/mnist.tsv"
    awk 'NR == 2 { e1 = $3 } NR == 3 { exit !($3 < e1 - 8) }' "$D/mnist.tsv"
}

@test "gaussian RBM on a standardised mixture: recon error -40%, free-energy gaps" {
    rbm-train -q -j 1 -V gaussian -H 16 -e 15 -o "$D/g.rbm" \
        --log "$D/g.tsv" --valid "$D/gauss_valid.tz" "$D/gauss.tz"
    rbm-train -q -j 1 -V gaussian -H 16 -e 15 -o "$D/gn.rbm" \
        --log "$D/gn.tsv" --valid "$D/gauss_noise.tz" "$D/gauss.tz"
    cmp "$D/g.rbm" "$D/gn.rbm"      # validation data do not change training
    cat "$D/g.tsv" "$D/gn.tsv"
    e1=$(first_col "$D/g.tsv" 3) e15=$(last_col "$D/g.tsv" 3)
    awk -v a="$e1" -v b="$e15" 'BEGIN { exit !(b < 0.6 * a) }'
    # held-out data of the same mixture: |gap| < 0.5; white noise: gap > 2
    # (measured: 0.01 and 2.8)
    gap=$(last_col "$D/g.tsv" 6) ngap=$(last_col "$D/gn.tsv" 6)
    awk -v g="$gap" -v n="$ngap" 'BEGIN { exit !(g < 0.5 && g > -0.5 && n > 2) }'
}

@test "replicated-softmax RBM on a topic set: recon error -25%, free-energy gap" {
    rbm-train -q -j 1 -V replicated-softmax -H 10 -e 10 -o "$D/r.rbm" \
        --log "$D/r.tsv" --valid "$D/bow_valid.tz" "$D/bow.tz"
    rbm-train -q -j 1 -V replicated-softmax -H 10 -e 10 -o "$D/r2.rbm" \
        --log "$D/rn.tsv" --valid "$D/bow_noise.tz" "$D/bow.tz"
    cat "$D/r.tsv" "$D/rn.tsv"
    e1=$(first_col "$D/r.tsv" 3) e10=$(last_col "$D/r.tsv" 3)
    awk -v a="$e1" -v b="$e10" 'BEGIN { exit !(b < 0.75 * a) }'
    # held-out documents: |gap| < 3; uniform-word documents: > 10x that
    # (measured: 1.25 and 33.9)
    gap=$(last_col "$D/r.tsv" 6) ngap=$(last_col "$D/rn.tsv" 6)
    awk -v g="$gap" -v n="$ngap" 'BEGIN { exit !(g < 3 && g > -3 && n > 10 * g) }'
}

@test "softmax groups, gaussian hidden units, PCD, sparsity, learn-sigma, DBM flags run" {
    $PY -c '
import numpy as np
r = np.random.default_rng(2)
y = r.integers(0, 4, 200)
np.savetxt("'"$D"'/onehot.csv", np.hstack([np.eye(4)[y], np.eye(4)[(y + 1) % 4]]), fmt="%d", delimiter=",")'
    tensor import csv --dtype u8 "$D/onehot.csv" > "$D/onehot.tz"
    rbm-train -q -j 1 -V softmax --softmax-group 4 -H 5 -e 2 -o "$D/s.rbm" "$D/onehot.tz"
    rbm-train -q -j 1 --hidden-type gaussian -l 0.01 -H 4 -e 2 -o "$D/gh.rbm" "$D/bin.tz"
    rbm-train -q -j 1 --pcd -k 3 --sparsity 0.1 -H 8 -e 2 -o "$D/p.rbm" "$D/bin.tz"
    rbm-train -q -j 1 -V gaussian --learn-sigma -H 8 -e 2 -o "$D/ls.rbm" "$D/gauss.tz"
    rbm-train -q -j 1 --dbm-bottom -H 8 -e 1 -o "$D/db.rbm" "$D/bin.tz"
    run tensor info "$D/db.rbm"
    [[ "$output" == *"rbm.up_scale"* ]]
    run -1 --separate-stderr rbm-train -q -V softmax --softmax-group 3 -o "$D/s3.rbm" "$D/onehot.tz"
    [ "$stderr" = "rbm-train: softmax group size 3 does not divide the 8 columns" ]
}

@test "same input, options, seed and threads give identical model files" {
    rbm-train -q -j 1 -H 8 -e 3 -s 5 -o "$D/a.rbm" "$D/bin.tz"
    rbm-train -q -j 1 -H 8 -e 3 -s 5 -o "$D/b.rbm" < "$D/bin.tz"
    cmp "$D/a.rbm" "$D/b.rbm"
    rbm-train -q -j 1 -H 8 -e 3 -s 6 -o "$D/c.rbm" "$D/bin.tz"
    run ! cmp -s "$D/a.rbm" "$D/c.rbm"
}

@test "interrupted (--stop-after-batches) and resumed run equals an uninterrupted one" {
    for mode in "" "--pcd -k 2"; do
        rbm-train -q -j 1 -H 8 -e 4 -b 50 $mode -o "$D/full.rbm" "$D/bin.tz"
        rm -f "$D/part.rbm"
        run -143 --separate-stderr rbm-train -q -j 1 -H 8 -e 4 -b 50 $mode \
            --stop-after-batches 17 -o "$D/part.rbm" "$D/bin.tz"
        [ "$stderr" = "rbm-train: interrupted; checkpoint saved to $D/part.rbm.ckpt (epoch 2, batch 5)" ]
        [ ! -e "$D/part.rbm" ]
        [ -s "$D/part.rbm.ckpt" ]
        rbm-train -q -j 1 -H 8 -e 4 -b 50 $mode --resume -o "$D/part.rbm" "$D/bin.tz"
        cmp "$D/full.rbm" "$D/part.rbm"
        [ ! -e "$D/part.rbm.ckpt" ]
    done
}

@test "a real SIGTERM saves a checkpoint; --resume ends identical" {
    $PY -c '
import numpy as np
r = np.random.default_rng(3)
np.savetxt("'"$D"'/big.csv", (r.random((20000, 64)) < 0.3).astype(int), fmt="%d", delimiter=",")'
    tensor import csv --dtype u8 "$D/big.csv" > "$D/big.tz"
    args="-q -j 1 -H 64 -e 40 --checkpoint-every 1"
    rm -f "$D/sig.rbm.ckpt" "$D/sig.tsv"
    rbm-train $args --log "$D/sig.tsv" -o "$D/sig.rbm" "$D/big.tz" 2> "$D/sig.err" &
    pid=$!
    # wait until the first epoch is logged, then interrupt mid-run
    for i in $(seq 1 300); do
        [ -f "$D/sig.tsv" ] && [ "$(wc -l < "$D/sig.tsv")" -ge 2 ] && break
        sleep 0.1
    done
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 143 ]
    grep -q "^rbm-train: interrupted; checkpoint saved to $D/sig.rbm.ckpt (epoch " "$D/sig.err"
    [ ! -e "$D/sig.rbm" ]
    rbm-train $args --resume -o "$D/sig.rbm" "$D/big.tz"
    rbm-train $args -o "$D/ref.rbm" "$D/big.tz"
    cmp "$D/ref.rbm" "$D/sig.rbm"
}

@test "--emit writes p(h|v) of the training rows in input order (= encode)" {
    rbm-train -q -j 1 -H 6 -e 2 -o "$D/e.rbm" --emit "$D/bin.tz" > "$D/h.tz"
    run tensor info "$D/h.tz"
    [[ "$output" == *"f32"* ]]
    grep -Eq '^shape: +\[6\] per record$' <<< "$output"
    grep -Eq '^records: +600$' <<< "$output"
    if command -v encode >/dev/null; then
        encode -j 1 "$D/e.rbm" "$D/bin.tz" > "$D/h2.tz"
        diff <(tensor export csv "$D/h.tz") <(tensor export csv "$D/h2.tz")
    fi
    # greedy stacking is a pipe; the second layer sees real-valued inputs
    rbm-train -q -j 1 -H 6 -e 1 -o "$D/l1.rbm" --emit "$D/bin.tz" |
        rbm-train -q -j 1 -H 3 -e 1 --allow-real -o "$D/l2.rbm"
    run tensor info "$D/l2.rbm"
    [[ "$output" == *"model.type"* ]]
}

@test "man page examples run (small size)" {
    [ -f "$MNIST/train-images-idx3-ubyte.gz" ] || skip "MNIST not found in ../shared/data/mnist"
    cd "$D"
    gzip -dc "$MNIST/train-images-idx3-ubyte.gz" | tensor import idx |
        tensor head -n 500 > x.tz
    # EXAMPLES 1: greedy stacking
    tensor binarize < x.tz | rbm-train -q -H 20 -e 1 -o l1.rbm --emit |
        rbm-train -q -H 10 -e 1 --allow-real -o l2.rbm
    [ -s l1.rbm ] && [ -s l2.rbm ]
    # EXAMPLES 2: grey levels as probabilities, PCD-5, a log
    rbm-train -q -H 20 -e 1 --allow-real --pcd -k 5 --log train.tsv -o grey.rbm x.tz
    [ "$(wc -l < train.tsv)" -eq 2 ]
    # EXAMPLES 3: interrupt and resume
    run -143 rbm-train -q -H 20 -e 2 --allow-real --stop-after-batches 3 -o r.rbm x.tz
    rbm-train -q -H 20 -e 2 --allow-real --resume -o r.rbm x.tz
    [ -s r.rbm ] && [ ! -e r.rbm.ckpt ]
}

@test "non-binary data for bernoulli units is an error unless --allow-real" {
    printf '0,1,0\n0,0.5,1\n' | tensor import csv > "$D/half.tz"
    run -1 --separate-stderr rbm-train -o "$D/h.rbm" "$D/half.tz"
    [ "$stderr" = "rbm-train: $D/half.tz: row 2: non-binary value for bernoulli units (use tensor binarize, or --allow-real for probabilities)" ]
    rbm-train -q -H 2 -e 1 --allow-real -o "$D/h.rbm" "$D/half.tz"
    printf '0,1,0\n0,1.5,1\n' | tensor import csv > "$D/big15.tz"
    run -1 --separate-stderr rbm-train --allow-real -o "$D/h.rbm" < "$D/big15.tz"
    [ "$stderr" = "rbm-train: stdin: row 2: value outside [0, 1] for bernoulli units" ]
    # u8 grey levels: an error without --allow-real, divided by 255 with it
    printf '0,255,128\n' | tensor import csv --dtype u8 > "$D/grey.tz"
    run -1 --separate-stderr rbm-train -o "$D/h.rbm" "$D/grey.tz"
    [[ "$stderr" == *"row 1: non-binary value for bernoulli units"* ]]
    rbm-train -q -H 2 -e 1 --allow-real -o "$D/h.rbm" "$D/grey.tz"
}

@test "negative or fractional counts for replicated softmax are errors" {
    printf '1,2,0\n3,-1,2\n' | tensor import csv > "$D/neg.tz"
    run -1 --separate-stderr rbm-train -V replicated-softmax -o "$D/n.rbm" "$D/neg.tz"
    [ "$stderr" = "rbm-train: $D/neg.tz: row 2: negative count for replicated-softmax units" ]
    printf '1,2.5,0\n' | tensor import csv > "$D/frac.tz"
    run -1 --separate-stderr rbm-train -V replicated-softmax -o "$D/n.rbm" "$D/frac.tz"
    [ "$stderr" = "rbm-train: $D/frac.tz: row 1: non-integral count for replicated-softmax units" ]
}

@test "NaN or Inf anywhere is an error" {
    $PY -c '
import numpy as np
a = np.zeros((3, 4), np.float32); a[2, 1] = np.nan
np.save("'"$D"'/nan.npy", a)
a[2, 1] = np.inf
np.save("'"$D"'/inf.npy", a)'
    tensor import npy "$D/nan.npy" > "$D/nan.tz"
    tensor import npy "$D/inf.npy" > "$D/inf.tz"
    run -1 --separate-stderr rbm-train -V gaussian -o "$D/n.rbm" "$D/nan.tz"
    [ "$stderr" = "rbm-train: $D/nan.tz: row 3: NaN or infinite value" ]
    run -1 --separate-stderr rbm-train -o "$D/n.rbm" "$D/inf.tz"
    [ "$stderr" = "rbm-train: $D/inf.tz: row 3: NaN or infinite value" ]
    run -1 --separate-stderr rbm-train -V gaussian -o "$D/n.rbm" --valid "$D/nan.tz" "$D/gauss.tz"
    [ "$stderr" = "rbm-train: $D/nan.tz: input has 4 columns, model expects 8" ]
}

@test "empty input: no stream, or a stream with no records" {
    : > "$D/empty.tz"
    run -1 --separate-stderr rbm-train -o "$D/e0.rbm" "$D/empty.tz"
    [ "$stderr" = "rbm-train: $D/empty.tz: empty input (no tensor stream)" ]
    tensor head -n 0 "$D/bin.tz" > "$D/zero.tz"
    run -1 --separate-stderr rbm-train -o "$D/e0.rbm" < "$D/zero.tz"
    [ "$stderr" = "rbm-train: empty input (no records)" ]
    [ ! -e "$D/e0.rbm" ]
}

@test "width mismatch: validation data and a checkpoint from other data" {
    run -1 --separate-stderr rbm-train -q -H 4 -o "$D/w.rbm" --valid "$D/bin8.tz" "$D/bin.tz"
    [ "$stderr" = "rbm-train: $D/bin8.tz: input has 8 columns, model expects 16" ]
    rm -f "$D/w.rbm.ckpt"
    run -143 rbm-train -q -j 1 -H 4 -e 2 --stop-after-batches 2 -o "$D/w.rbm" "$D/bin.tz"
    run -1 --separate-stderr rbm-train -q -j 1 -H 4 -e 2 --resume -o "$D/w.rbm" "$D/bin8.tz"
    [ "$stderr" = "rbm-train: input has 8 columns, checkpoint $D/w.rbm.ckpt expects 16" ]
    run -1 --separate-stderr rbm-train -q -j 1 -H 4 -e 2 -s 9 --resume -o "$D/w.rbm" "$D/bin.tz"
    [ "$stderr" = "rbm-train: $D/w.rbm.ckpt: checkpoint was made with other options or data" ]
}

@test "resume without a checkpoint, and a corrupt checkpoint" {
    run -1 --separate-stderr rbm-train --resume -o "$D/none.rbm" "$D/bin.tz"
    [ "$stderr" = "rbm-train: $D/none.rbm.ckpt: no checkpoint to resume from" ]
    rm -f "$D/cc.rbm.ckpt"
    run -143 rbm-train -q -j 1 -H 4 -e 2 --stop-after-batches 2 -o "$D/cc.rbm" "$D/bin.tz"
    head -c 200 "$D/cc.rbm.ckpt" > "$D/t" && mv "$D/t" "$D/cc.rbm.ckpt"
    run -1 --separate-stderr rbm-train -q -j 1 -H 4 -e 2 --resume -o "$D/cc.rbm" "$D/bin.tz"
    [[ "$stderr" == "rbm-train: $D/cc.rbm.ckpt: "* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    # a model file of another type
    printf 'x\n' > "$D/notz.rbm.ckpt"
    run -1 --separate-stderr rbm-train -q --resume -o "$D/notz.rbm" "$D/bin.tz"
    [[ "$stderr" == "rbm-train: $D/notz.rbm.ckpt: "* ]]
}

@test "an existing model file is never left half-written by a failing run" {
    rbm-train -q -j 1 -H 4 -e 1 -o "$D/keep.rbm" "$D/bin.tz"
    cp "$D/keep.rbm" "$D/keep.orig"
    printf '0,1,0\n0,0.5,1\n' | tensor import csv > "$D/half.tz"
    : > "$D/empty.tz"
    run -1 rbm-train -q -o "$D/keep.rbm" "$D/half.tz"
    cmp "$D/keep.rbm" "$D/keep.orig"
    run -1 rbm-train -q -o "$D/keep.rbm" "$D/empty.tz"
    cmp "$D/keep.rbm" "$D/keep.orig"
    [ -z "$(ls "$D" | grep 'keep.rbm.tmp')" ]
}

@test "model records provenance and no date" {
    rbm-train -q -j 1 -H 4 -e 1 -s 3 -o "$D/prov.rbm" "$D/bin.tz"
    run tensor info "$D/prov.rbm"
    for k in model.type rbm.visible rbm.hidden rbm.softmax_group rbm.up_scale \
             rbm.down_scale rbmkit.version train.seed train.data_crc32c \
             train.data_rows train.epochs train.learning_rate; do
        [[ "$output" == *"$k"* ]] || { echo "missing $k"; false; }
    done
    [[ "$output" != *"date"* ]]
}
