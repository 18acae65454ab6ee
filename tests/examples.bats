#!/usr/bin/env bats
# examples.bats - the demo (examples/Makefile) and the README's pipeline run
# at a small size, with the tools from bin/.

bats_require_minimum_version 1.5.0

setup() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    PATH="$TOP/${BIN:-bin}:$PATH"
    cd "$BATS_TEST_TMPDIR"
}

png_size() {   # width and height from a PNG's IHDR
    od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'
}

@test "make demo: trains, draws filters, samples, completes digits, estimates log Z" {
    run make --no-print-directory -C "$TOP/examples" demo OUT="$BATS_TEST_TMPDIR/out"
    [ "$status" -eq 0 ]
    for f in digits filters samples completed; do
        [ "$(head -c 8 out/$f.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    done
    # 100 filters of 28x28 in a 10x10 grid with 1-pixel separators
    [ "$(png_size out/filters.png)" = "289 289" ]
    # the model: 784 x 100 weights, trained 15 epochs, error falling
    run tensor info out/rbm.tz
    [[ "$output" == *"train.epochs = 15"* ]]
    first=$(awk 'NR == 2 {print $3}' out/train.log)
    last=$(awk 'END {print $3}' out/train.log)
    awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.8 * a)}'
    # the estimate line and a plausible log-probability for binary digits
    grep -E '^log Z = [0-9.]+ \[' out/ais.txt
    lp=$(sed -n 's/^test log p(v) = \(-[0-9.]*\) .*/\1/p' out/ais.txt)
    awk -v x="$lp" 'BEGIN {exit !(x < -60 && x > -250)}'
}

@test "README pipeline: import, binarize, two stacked RBMs, tile, sample" {
    # the README's pipeline on 300 digits shipped in examples/data
    tensor head -n 300 "$TOP/examples/data/mnist-2k.tz" | tensor binarize |
        rbm-train -q -o l1.rbm -H 50 -e 2 --emit | rbm-train -q -o l2.rbm -H 20 -e 2
    run tensor info l2.rbm
    [[ "$output" == *"records:    50"* ]]
    # the same two layers as a chain of encoders: 300 codes of width 20
    tensor head -n 300 "$TOP/examples/data/mnist-2k.tz" | tensor binarize |
        encode l1.rbm | encode l2.rbm > codes.tz
    run tensor info codes.tz
    [[ "$output" == *"records:    300"* ]]
    [[ "$output" == *"[20]"* ]]
    tensor tile --name W --transpose --shape 28x28 l1.rbm > filters.png
    [ -s filters.png ]
    rbm-sample l1.rbm -n 4 --steps 10 | tensor tile > samples.png
    [ -s samples.png ]
}

@test "examples/mnist-dbm at a small size: DBM and DBN bounds, samples, completions" {
    mnist="$TOP/../shared/data/mnist"
    [ -r "$mnist/train-images-idx3-ubyte.gz" ] || skip "MNIST not found at $mnist"
    run make --no-print-directory -C "$TOP/examples/mnist-dbm" OUT="$BATS_TEST_TMPDIR/m" \
        MNIST="$mnist" ROWS=2000 TEST_ROWS=300 H1=100 H2=200 H2DBN=200 \
        E1=3 E2=3 E3=3 EDBN=3 BETAS=1000 RUNS=20 all
    [ "$status" -eq 0 ]
    # the bounds: plausible log-probabilities of binary digits in nats
    for f in dbm-eval dbn-eval; do
        grep -E '^log Z' "m/$f.txt"
        b=$(sed -n 's/^test log p(v) >= \(-[0-9.]*\) .*/\1/p' "m/$f.txt")
        awk -v x="$b" 'BEGIN {exit !(x < -60 && x > -250)}'
    done
    grep -q 'mean-field bound' m/dbm-eval.txt
    grep -q 'variational bound' m/dbn-eval.txt
    # the DBM was trained jointly for 3 epochs on the composed model
    run tensor info m/dbm.dbm
    [[ "$output" == *'model.type = "dbm"'* ]]
    [[ "$output" == *"train.epochs = 3"* ]]
    [ "$(wc -l < m/logs/dbm.tsv)" -eq 4 ]
    for p in dbm-samples dbn-samples dbm-halves; do
        [ "$(head -c 8 m/$p.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    done
}

@test "examples/multimodal at a small size: the label table and generated halves" {
    mnist="$TOP/../shared/data/mnist"
    [ -r "$mnist/train-images-idx3-ubyte.gz" ] || skip "MNIST not found at $mnist"
    run make --no-print-directory -C "$TOP/examples/multimodal" OUT="$BATS_TEST_TMPDIR/mm" \
        MNIST="$mnist" ROWS=2000 TEST_ROWS=300 H1=100 HJ=100 E1=3 EJ=3 EDBM=2 \
        FT=2 MF=5 STEPS=20 all
    [ "$status" -eq 0 ]
    # a header and three models, every error a rate in [0, 1] (or -)
    [ "$(head -n 1 mm/table.txt)" = "$(printf 'model\tboth_halves\tleft_only\tright_only\tnone')" ]
    [ "$(cut -f 1 mm/table.txt | tail -n +2 | tr '\n' ' ')" = "mdbn mdbn-ft mdbm dbm " ]
    awk -F'\t' 'NR > 1 { for (i = 2; i <= 5; i++) if ($i != "-" && !($i >= 0 && $i <= 1)) exit 1 }' mm/table.txt
    # the models: an MDBN and a DBM over left, right and label
    [[ "$(tensor info mm/mdbn.tz)" == *'model.type = "mdbn"'* ]]
    [[ "$(tensor info mm/mdbm.tz)" == *'joint.modalities = "left,right,label"'* ]]
    [ "$(head -c 8 mm/halves.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    [ "$(tensor info mm/both20.tz | sed -n 's/^records: *//p')" = 40 ]
}

@test "examples/emoji at a small size: tag mAP against the references, retrieval" {
    om="$TOP/../shared/data/openmoji"
    [ -r "$om/images-32x32x3.idx.gz" ] || skip "OpenMoji not found at $om"
    /usr/bin/python3 -c 'import sklearn' 2>/dev/null || skip "python3-sklearn is not installed (make deps)"
    run make --no-print-directory -C "$TOP/examples/emoji" OUT="$BATS_TEST_TMPDIR/em" \
        OPENMOJI="$om" N=600 NTRAIN=420 K=32 H_IMG=32 H_TXT=16 HJ=32 E1=3 EJ=3 EDBM=2 \
        QUERIES="face hand person qqqq" all
    [ "$status" -eq 0 ]
    [ "$(head -n 1 em/table.txt)" = "$(printf 'tags\tmAP\trows')" ]
    [ "$(cut -f 1 em/table.txt | tail -n +2 | tr '\n' '|')" = "mdbm|frequency prior|logistic regression (scikit-learn)|" ]
    awk -F'\t' 'NR > 1 { if (!($2 > 0 && $2 <= 1) || $3 < 100) exit 1 }' em/table.txt
    [ "$(grep -c '^  generated: ' em/tags.txt)" = 16 ]
    [ "$(grep -c '(joint code): ' em/nearest.txt)" = 3 ]
    grep -qx "qqqq: not in the vocabulary" em/nearest.txt
    for p in nearest test-pictures; do
        [ "$(head -c 8 em/$p.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    done
    # the pictures drawn in colour
    [ "$(od -An -tx1 -j 25 -N 1 em/nearest.png | tr -d ' ')" = 02 ]
}
