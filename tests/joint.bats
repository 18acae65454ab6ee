#!/usr/bin/env bats
# joint.bats - tests for joint(1) and the multimodal modes of encode(1) and
# rbm-sample(1): the model keys (pathways copied byte for byte), label
# inference above chance, absent rows (a row of NaN) against leaving the
# modality out, every bad-input message, --stop-after-batches / --resume
# identity in both phases, deterministic sampling.  Split digits: the left
# and right halves (28x14) of 500 binarised digits and their labels.

bats_require_minimum_version 1.5.0

load helpers/deep

setup_file() {
    deep_env || return 1
    local ex="$TOP/examples/data"
    tensor head -n 500 "$ex/mnist-2k.tz" | tensor binarize > d.tz
    tensor head -n 500 "$ex/mnist-2k-labels.tz" > y.tz
    tensor export csv y.tz > y.csv
    tensor slice -c 0:14 d.tz > l.tz
    tensor slice -c 14: d.tz > r.tz
    # pathways: plain RBMs for the DBN, --dbm-bottom for the DBM
    rbm-train -q -j 1 -H 40 -e 5 -s 1 -o lp.rbm l.tz
    rbm-train -q -j 1 -H 40 -e 5 -s 2 -o rp.rbm r.tz
    rbm-train -q -j 1 --dbm-bottom -H 40 -e 5 -s 3 -o lb.rbm l.tz
    rbm-train -q -j 1 --dbm-bottom -H 40 -e 5 -s 4 -o rb.rbm r.tz
    # the right halves with rows 1-50 absent (NaN), as f32
    tensor export csv r.tz | awk -F, -v OFS=, 'NR <= 50 { for (i = 1; i <= NF; i++) $i = "nan" } { print }' |
        tensor import csv --dtype f32 > rnan.tz
    tensor export csv r.tz | tensor import csv --dtype f32 > rf.tz
}

MDBN="-q -j 1 -b 20 -H 30 -m l=l.tz -p l=lp.rbm -m r=r.tz -p r=rp.rbm -m label=y.tz -V label=softmax"
MDBM="--dbm -q -j 1 -b 20 -H 30 -m l=l.tz -p l=lb.rbm -m r=r.tz -p r=rb.rbm -m label=y.tz -V label=softmax"

# err PROBS: label error of class-probability rows against y.csv
err() {
    tensor export csv "$1" | paste -d, - y.csv | awk -F, '{ m = 1
        for (i = 2; i < NF; i++) if ($i > $m) m = i
        if (m - 1 != $NF) e++ } END { printf "%.4f\n", e / NR }'
}

# maxdiff A.csv B.csv: the largest absolute difference of two csv files
maxdiff() {
    paste -d, "$1" "$2" | awk -F, '{ n = NF / 2; for (i = 1; i <= n; i++) {
        d = $i - $(i + n); if (d < 0) d = -d; if (d > m) m = d } }
        END { printf "%.3g\n", m }'
}

@test "joint: --help on stdout, --version" {
    run --separate-stderr joint --help
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${lines[0]}" = "Usage: joint -o MODEL [--dbm] -H N -m NAME=DATA -m NAME=DATA... [OPTION]..." ]
    for o in output modality visible softmax-group pathway hidden dbm force \
             pretrain-epochs pretrain-rate epochs batch learning-rate lr-decay \
             lr-min momentum initial-momentum momentum-epochs weight-decay \
             chains sweeps mf-iters mf-tol damping sparsity sparsity-cost \
             allow-real seed threads log checkpoint-every resume \
             stop-after-batches quiet; do
        [[ "$output" == *"--$o"* ]] || { echo "missing --$o"; false; }
    done
    run --separate-stderr joint --version
    [ "$output" = "joint (rbmkit) 0.1.0" ]
}

@test "joint: a multimodal DBN keeps its pathways byte for byte" {
    joint $MDBN -e 2 -o mdbn.tz
    [ "$(attr mdbn.tz model.type)" = '"mdbn"' ]
    [ "$(attr mdbn.tz mdbn.joint)" = '"joint"' ]
    [ "$(attr mdbn.tz dbm.layers)" = 6 ]
    [ "$(attr mdbn.tz joint.modalities)" = '"l,r,label"' ]
    names=$(for i in 0 1 2 3 4 5; do attr mdbn.tz layer.$i.name; done | tr '\n' ' ')
    [ "$names" = '"l" "l_h1" "joint" "r_h1" "r" "label" ' ]
    vis=$(for i in 0 1 2 3 4 5; do attr mdbn.tz layer.$i.visible; done | tr '\n' ' ')
    [ "$vis" = '1 0 0 0 1 1 ' ]
    [ "$(attr mdbn.tz layer.5.unit)" = '"softmax"' ]
    [ "$(attr mdbn.tz layer.5.units)" = 10 ]
    # the pathway weights, recognition and generative biases as trained
    cmp <(tensor export npy --name W1 mdbn.tz) <(tensor export npy --name W lp.rbm)
    cmp <(tensor export npy --name l_h1.up_bias mdbn.tz) <(tensor export npy --name hbias lp.rbm)
    cmp <(tensor export npy --name l.bias mdbn.tz) <(tensor export npy --name vbias lp.rbm)
    cmp <(tensor export npy --name r_h1.up_bias mdbn.tz) <(tensor export npy --name hbias rp.rbm)
    cmp <(tensor export npy --name r.bias mdbn.tz) <(tensor export npy --name vbias rp.rbm)
    # the right pathway's edge runs r_h1 -> r: stored (40, 392), W of the
    # pathway transposed
    [ "$(attr mdbn.tz edge.2.from)" = '"r_h1"' ]
    "$PY" -c '
import numpy as np, subprocess
def npy(f, n):
    return np.load(__import__("io").BytesIO(subprocess.run(["tensor", "export", "npy", "--name", n, f], capture_output=True, check=True).stdout))
a = npy("mdbn.tz", "W2"); b = npy("rp.rbm", "W")
assert a.shape == (40, 392) and (a == b.T).all(), a.shape'
}

@test "joint --dbm: pretraining only (-e 0) keeps the pathway weights; the tree's layers" {
    joint $MDBM --pretrain-epochs 2 -e 0 -o m0.tz
    [ "$(attr m0.tz model.type)" = '"dbm"' ]
    [ "$(attr m0.tz edge.3.from)" = '"l_h1"' ]
    [ "$(attr m0.tz edge.3.to)" = '"joint"' ]
    cmp <(tensor export npy --name W1 m0.tz) <(tensor export npy --name W lb.rbm)
    cmp <(tensor export npy --name l.bias m0.tz) <(tensor export npy --name vbias lb.rbm)
    # l_h1's bias is the mean of the pathway's hidden bias and the joint
    # RBM's visible bias: not the pathway's own any more
    run ! cmp <(tensor export npy --name l_h1.bias m0.tz) <(tensor export npy --name hbias lb.rbm)
    joint $MDBM --pretrain-epochs 2 -e 2 -o m2.tz
    run ! cmp <(tensor export npy --name W1 m2.tz) <(tensor export npy --name W lb.rbm)
}

@test "joint: labels inferred from both halves, one half, none; above chance" {
    # measured: MDBN 0.58 (60 joint units, 50 epochs at rate 0.1), MDBM 0.34
    # error on the 500 training digits (chance 0.90, the majority class 0.87)
    joint $MDBN -H 60 -e 50 -l 0.1 -o mdbn.tz
    joint $MDBM --pretrain-epochs 20 --pretrain-rate 0.1 -e 5 -l 0.01 -o mdbm.tz
    for m in mdbn mdbm; do
        encode -q $m.tz -m l=l.tz -m r=r.tz -L label > both.tz
        [ "$(tensor info both.tz | sed -n 's/^records: *//p')" = 500 ]
        tensor export csv both.tz | awk -F, '{ s = 0; for (i = 1; i <= NF; i++) s += $i
            if (NF != 10 || s < 0.9999 || s > 1.0001) exit 1 }'
        e=$(err both.tz); echo "# $m both halves: $e"
        awk -v e="$e" 'BEGIN { exit !(e < 0.75) }'
        encode -q $m.tz -m l=l.tz -L label > left.tz
        e=$(err left.tz); echo "# $m left half: $e"
        awk -v e="$e" 'BEGIN { exit !(e < 0.85) }'
        # the right half inferred from the left: probabilities, 392 columns
        encode -q $m.tz -m l=l.tz -L r > rgen.tz
        [ "$(tensor info rgen.tz | sed -n 's/^shape: *//p')" = "[392] per record" ]
        tensor export csv rgen.tz > rgen.csv
        csv_range rgen.csv
        [ "$(attr rgen.tz modality.name)" = '"r"' ]
        [ "$(attr rgen.tz encode.layer)" = '"r"' ]
        [ "$(attr rgen.tz encode.modalities)" = '"l"' ]
    done
}

@test "absent rows (NaN) equal leaving the modality out, row by row" {
    joint $MDBM --pretrain-epochs 2 -e 1 -o mdbm.tz
    for m in mdbm; do
        encode -q -j 1 $m.tz -m l=l.tz -m r=rnan.tz -L joint | tensor export csv > mixed.csv
        encode -q -j 1 $m.tz -m l=l.tz -L joint | tensor export csv > leftonly.csv
        encode -q -j 1 $m.tz -m l=l.tz -m r=rf.tz -L joint | tensor export csv > full.csv
        [ "$(wc -l < mixed.csv)" = 500 ]
        d=$(maxdiff <(head -n 50 mixed.csv) <(head -n 50 leftonly.csv)); echo "# absent rows: $d"
        awk -v d="$d" 'BEGIN { exit !(d < 1e-5) }'
        d=$(maxdiff <(tail -n 450 mixed.csv) <(tail -n 450 full.csv)); echo "# present rows: $d"
        awk -v d="$d" 'BEGIN { exit !(d < 1e-5) }'
    done
}

@test "joint trains with absent rows; both kinds; the data of absent rows is never read" {
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -m r=rnan.tz -o m1.tz
    joint --dbm -q -j 1 -b 20 -H 20 --pretrain-epochs 2 -e 2 -m l=l.tz -m r=rnan.tz -o m2.tz
    joint --dbm -q -j 1 -b 20 -H 20 --pretrain-epochs 2 -e 2 -m l=l.tz -p l=lb.rbm \
        -m r=rnan.tz -p r=rb.rbm -o m3.tz
    for m in m1 m2 m3; do
        # finite parameters (a NaN read would spread to every weight)
        tensor info $m.tz > /dev/null
        encode -q $m.tz -m l=l.tz -L r | tensor export csv > g.csv
        csv_range g.csv
    done
}

@test "joint: complete f32 rows and the same rows as u8 give the same model" {
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -m r=r.tz -o a.tz
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -m r=rf.tz -o b.tz
    for t in W1 W2 joint.bias l.bias r.bias; do
        cmp <(tensor export npy --name $t a.tz) <(tensor export npy --name $t b.tz)
    done
}

@test "joint: a label given as class indices or as one-hot rows" {
    tensor export csv y.tz | awk -F, -v OFS=, '{ s = ""; for (i = 0; i < 10; i++) s = s (i ? "," : "") (i == $1); print s }' |
        tensor import csv --dtype f32 > y1h.tz
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -m label=y.tz -V label=softmax -o a.tz
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -m label=y1h.tz -V label=softmax -o b.tz
    for t in W1 W2 joint.bias label.bias; do
        cmp <(tensor export npy --name $t a.tz) <(tensor export npy --name $t b.tz)
    done
    encode -q a.tz -m l=l.tz -m label=y.tz -L joint > p1.tz
    encode -q a.tz -m l=l.tz -m label=y1h.tz -L joint > p2.tz
    cmp <(tensor export csv p1.tz) <(tensor export csv p2.tz)
}

@test "joint: interrupted and resumed runs equal uninterrupted ones (both phases)" {
    joint $MDBM --pretrain-epochs 2 -e 2 -o full.tz
    # 25 batches an epoch: batch 30 falls in pretraining, 70 in joint training
    for n in 30 70; do
        run -143 --separate-stderr joint $MDBM --pretrain-epochs 2 -e 2 --stop-after-batches $n -o part.tz
        [ -f part.tz.ckpt ]
        [ ! -e part.tz ]
        [[ "$stderr" == *"part.tz.ckpt"* ]]
        joint $MDBM --pretrain-epochs 2 -e 2 --resume -o part.tz
        [ ! -e part.tz.ckpt ]
        for t in W1 W2 W3 W4 W5 joint.bias l_h1.bias label.bias; do
            cmp <(tensor export npy --name $t part.tz) <(tensor export npy --name $t full.tz)
        done
        rm part.tz
    done
    joint $MDBN -e 3 -o nfull.tz
    run -143 joint $MDBN -e 3 --stop-after-batches 40 -o npart.tz
    joint $MDBN -e 3 --resume -o npart.tz
    for t in W3 W4 W5 joint.bias label.bias r_h1.bias; do
        cmp <(tensor export npy --name $t npart.tz) <(tensor export npy --name $t nfull.tz)
    done
    # only with the options the checkpoint was made with
    run -143 joint $MDBN -e 3 --stop-after-batches 5 -o ck.tz
    run -1 --separate-stderr joint $MDBN -e 3 -s 9 --resume -o ck.tz
    [ "$stderr" = "joint: ck.tz.ckpt: checkpoint was made with other options or data" ]
    run -1 --separate-stderr joint $MDBN -e 3 --resume -o none.tz
    [ "$stderr" = "joint: none.tz.ckpt: no checkpoint to resume from" ]
}

@test "joint --log: one line an epoch of each phase" {
    joint $MDBM --pretrain-epochs 2 -e 3 --log j.tsv -o m.tz
    [ "$(head -n 1 j.tsv)" = "$(printf 'phase\tepoch\tseconds\trecon_error\tlearning_rate\tmf_sweeps')" ]
    [ "$(cut -f 1,2 j.tsv | tail -n +2 | tr '\t\n' ': ')" = "pretrain:1 pretrain:2 joint:1 joint:2 joint:3 " ]
}

@test "joint: bad input, each a one-line error" {
    tensor head -n 400 r.tz > r400.tz
    rbm-train -q -j 1 -H 10 -e 1 -o full.rbm d.tz
    tensor export csv rf.tz | awk -F, -v OFS=, 'NR == 7 { $3 = "nan" } { print }' |
        tensor import csv --dtype f32 > rpart.tz
    run -1 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r400.tz
    [ "$stderr" = "joint: r400.tz: 400 rows, but l.tz has 500: modality streams must be row-aligned" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m l=r.tz
    [ "${stderr_lines[0]}" = "joint: two modalities named 'l'" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz
    [ "${stderr_lines[0]}" = "joint: one modality; a joint model needs two or more (for one, use rbm-train or stack)" ]
    run -2 --separate-stderr joint -q -o bad.tz
    [ "${stderr_lines[0]}" = "joint: no modalities given (-m NAME=DATA)" ]
    run -2 --separate-stderr joint -q -m l=l.tz -m r=r.tz
    [ "${stderr_lines[0]}" = "joint: no model file given (-o MODEL)" ]
    run -1 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz -p l=full.rbm
    [ "$stderr" = "joint: full.rbm: pathway of 'l' takes rows of 784 values, l.tz has 392" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz -p x=lp.rbm
    [ "${stderr_lines[0]}" = "joint: --pathway x=...: no modality 'x' (give it with -m x=DATA)" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz -V r=foo
    [ "${stderr_lines[0]}" = "joint: --visible r=foo: unit type must be bernoulli, gaussian, softmax or replicated-softmax" ]
    run -1 --separate-stderr joint --dbm -q -o bad.tz -m l=l.tz -m r=r.tz -p l=lp.rbm
    [ "$stderr" = "joint: lp.rbm: pathway of 'l' was not pretrained for a multimodal DBM (it needs a doubled bottom-up input); retrain it with rbm-train --dbm-bottom, or use --force" ]
    joint --dbm -q -j 1 -H 10 --pretrain-epochs 1 -e 1 -f -o forced.tz -m l=l.tz -m r=r.tz -p l=lp.rbm
    run -1 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz -p l=lb.rbm
    [ "$stderr" = "joint: lb.rbm: pathway of 'l' was not pretrained for a multimodal DBN (it has DBM doubling); retrain it without --dbm-*, or use --force" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m joint=r.tz
    [ "${stderr_lines[0]}" = "joint: 'joint' names the joint layer; call the modality something else" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l.tz -m r=r.tz
    [ "${stderr_lines[0]}" = "joint: -m l.tz: no NAME= and the stream has no modality.name attribute" ]
    run -2 --separate-stderr joint -q -o bad.tz -m L=l.tz -m r=r.tz
    [ "${stderr_lines[0]}" = "joint: --modality: modality name 'L': use a-z, 0-9 and _" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz -p l=lp.rbm -p l=lp.rbm
    [ "${stderr_lines[0]}" = "joint: two pathways for modality 'l'" ]
    run -1 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=rpart.tz
    [ "$stderr" = "joint: rpart.tz: row 7: NaN in some columns (an absent modality is a row of NaN in every column)" ]
    run -1 --separate-stderr joint -q -o /nonexistent/m.tz -m l=l.tz -m r=r.tz
    [ "$stderr" = "joint: /nonexistent/m.tz: cannot write here: No such file or directory" ]
    run -2 --separate-stderr joint -q -o bad.tz -m l=l.tz -m r=r.tz extra
    [ "${stderr_lines[0]}" = "joint: unexpected operand 'extra' (modalities are given with -m NAME=DATA)" ]
    [ ! -e bad.tz ]
}

@test "a stream's modality.name names the modality" {
    joint -q -j 1 -b 20 -H 10 -e 1 -m l=l.tz -m r=r.tz -o named.tz
    encode -q named.tz -m l=l.tz -L r > rr.tz
    [ "$(attr rr.tz modality.name)" = '"r"' ]
    # rr.tz says it is modality r: -m without NAME= takes it
    joint -q -j 1 -b 20 -H 10 -e 1 -m l=l.tz -m rr.tz --allow-real -o named2.tz
    [ "$(attr named2.tz joint.modalities)" = '"l,r"' ]
}

@test "encode and rbm-sample --modality: bad input, each a one-line error" {
    joint $MDBN -e 1 -o mdbn.tz
    tensor head -n 400 r.tz > r400.tz
    tensor export csv rf.tz | awk -F, -v OFS=, 'NR == 7 { $3 = "nan" } { print }' |
        tensor import csv --dtype f32 > rpart.tz
    run -2 --separate-stderr encode mdbn.tz -m x=l.tz
    [ "${stderr_lines[0]}" = "encode: --modality x: the model has no modality 'x' (its modalities: l, r, label)" ]
    run -2 --separate-stderr encode mdbn.tz l.tz
    [ "${stderr_lines[0]}" = "encode: mdbn.tz: a multimodal DBN; give its data with --modality NAME=DATA" ]
    run -2 --separate-stderr encode mdbn.tz -m l=l.tz l.tz
    [ "${stderr_lines[0]}" = "encode: give the data with --modality NAME=DATA, not as INPUT 'l.tz'" ]
    run -1 --separate-stderr encode mdbn.tz -m l=l.tz -m r=r400.tz
    [ "$stderr" = "encode: l.tz and r400.tz: modality streams with different row counts (500 and 400 rows)" ]
    run -2 --separate-stderr encode mdbn.tz -m l=r.tz -m l=l.tz
    [ "${stderr_lines[0]}" = "encode: two modalities named 'l'" ]
    run -1 --separate-stderr encode mdbn.tz -m l=d.tz
    [ "$stderr" = "encode: d.tz: rows of 784 values, modality 'l' has 392 units" ]
    run -2 --separate-stderr encode mdbn.tz -m l_h1=l.tz
    [ "${stderr_lines[0]}" = "encode: --modality l_h1: the model has no modality 'l_h1' (its modalities: l, r, label)" ]
    run -1 --separate-stderr encode mdbn.tz -m l=l.tz -m r=rpart.tz
    [ "$stderr" = "encode: rpart.tz: row 7: NaN in some columns (an absent modality is a row of NaN in every column)" ]
    run -2 --separate-stderr encode lp.rbm -m l=l.tz
    [ "${stderr_lines[0]}" = "encode: --modality needs a multimodal model (a DBM or an MDBN from joint or stack), not model.type rbm" ]
    run -2 --separate-stderr rbm-sample mdbn.tz -m l=l.tz
    [ "${stderr_lines[0]}" = "rbm-sample: --modality needs --generate NAME (the modality to sample)" ]
    run -2 --separate-stderr rbm-sample mdbn.tz -g r
    [ "${stderr_lines[0]}" = "rbm-sample: --generate needs the given modalities (--modality NAME=DATA)" ]
    run -2 --separate-stderr rbm-sample mdbn.tz -m l=l.tz -g l
    [ "${stderr_lines[0]}" = "rbm-sample: --generate l: that modality is given (--modality l=...)" ]
    run -2 --separate-stderr rbm-sample mdbn.tz -m l=l.tz -g nope
    [ "${stderr_lines[0]}" = "rbm-sample: --generate nope: the model has no modality 'nope'" ]
    run -2 --separate-stderr rbm-sample mdbn.tz
    [ "${stderr_lines[0]}" = "rbm-sample: mdbn.tz: a multimodal DBN; sample it with --modality NAME=DATA --generate NAME" ]
}

@test "rbm-sample --generate: shapes, 0/1 samples, means in [0,1], deterministic" {
    joint $MDBN -e 2 -o mdbn.tz
    joint $MDBM --pretrain-epochs 2 -e 1 -o mdbm.tz
    tensor head -n 20 l.tz > l20.tz
    for m in mdbn mdbm; do
        rbm-sample $m.tz -m l=l20.tz -g r --steps 20 -s 3 > s1.tz
        rbm-sample $m.tz -m l=l20.tz -g r --steps 20 -s 3 > s2.tz
        cmp s1.tz s2.tz
        rbm-sample $m.tz -m l=l20.tz -g r --steps 20 -s 4 > s3.tz
        run ! cmp <(tensor export csv s1.tz) <(tensor export csv s3.tz)
        [ "$(tensor info s1.tz | sed -n 's/^records: *//p')" = 20 ]
        tensor export csv s1.tz | awk -F, '{ if (NF != 392) exit 1; for (i = 1; i <= NF; i++) if ($i != 0 && $i != 1) exit 1 }'
        rbm-sample $m.tz -m l=l20.tz -g r --steps 20 --every 5 --burn-in 5 --means > e.tz
        [ "$(tensor info e.tz | sed -n 's/^records: *//p')" = 60 ]
        tensor export csv e.tz > e.csv
        csv_range e.csv
        # labels generated from left halves: one-hot samples
        rbm-sample $m.tz -m l=l20.tz -g label --steps 10 | tensor export csv |
            awk -F, '{ s = 0; for (i = 1; i <= NF; i++) s += $i; if (NF != 10 || s != 1) exit 1 }'
        # the pictures of the example: halves side by side
        tensor paste --side-by-side l20.tz s1.tz > lr.tz
        [ "$(tensor info lr.tz | sed -n 's/^shape: *//p')" = "[28 28] per record" ]
    done
}

@test "stack --dbm --labels models take --modality too: label inference as the deep path" {
    rbm-train -q -j 1 --dbm-bottom -H 40 -e 2 -o c1.rbm d.tz
    encode -j 1 c1.rbm d.tz | rbm-train -q -j 1 --dbm-top -H 20 -e 2 --allow-real -o c2.rbm
    stack --dbm -q -j 1 -e 1 -b 20 --labels y.tz -o lab.dbm c1.rbm c2.rbm d.tz
    encode -q -j 1 lab.dbm -L label d.tz | tensor export csv > a.csv
    encode -q -j 1 lab.dbm -m v=d.tz -L label | tensor export csv > b.csv
    d=$(maxdiff a.csv b.csv); echo "# $d"
    awk -v d="$d" 'BEGIN { exit !(d < 1e-5) }'
}

@test "encode --clamp: a DBM's visible layer observed in part" {
    rbm-train -q -j 1 --dbm-bottom -H 40 -e 2 -o c1.rbm d.tz
    encode -j 1 c1.rbm d.tz | rbm-train -q -j 1 --dbm-top -H 20 -e 2 --allow-real -o c2.rbm
    stack --dbm -q -j 1 -e 1 -b 20 --labels y.tz -o lab.dbm c1.rbm c2.rbm d.tz
    # every unit listed: the same as no --clamp
    cmp <(encode -q -j 1 lab.dbm -L label d.tz | tensor export csv) \
        <(encode -q -j 1 lab.dbm -L label --clamp 0:784 d.tz | tensor export csv)
    # the left halves held: those columns of the visible means are the data,
    # the others means in [0, 1] that do not depend on the right halves
    left=$(awk 'BEGIN { for (r = 0; r < 28; r++) printf "%s%d:%d", r ? "," : "", 28 * r, 28 * r + 14 }')
    encode -q -j 1 lab.dbm -L v --clamp "$left" d.tz | tensor export csv > v.csv
    cols=$(awk 'BEGIN { for (r = 0; r < 28; r++) for (c = 1; c <= 14; c++) printf "%s%d", (r || c > 1) ? "," : "", 28 * r + c }')
    cmp <(cut -d, -f"$cols" v.csv | sed 's/\.0*,/,/g; s/\.0*$//') <(tensor export csv d.tz | cut -d, -f"$cols")
    csv_range v.csv
    tensor export csv d.tz | awk -F, -v OFS=, '{ for (r = 0; r < 28; r++) for (c = 15; c <= 28; c++) $(28 * r + c) = 1 - $(28 * r + c); print }' |
        tensor import csv --dtype u8 > flipped.tz
    cmp v.csv <(encode -q -j 1 lab.dbm -L v --clamp "$left" flipped.tz | tensor export csv)
    run -2 --separate-stderr encode c1.rbm --clamp 0:10 d.tz < /dev/null
    [ "${stderr_lines[0]}" = "encode: --clamp applies to DBMs (a DBN's up-pass needs every visible unit)" ]
}

@test "joint: deeper pathways: a DBN under a multimodal DBN, a DBM chain under a multimodal DBM" {
    encode -q -j 1 lp.rbm l.tz | rbm-train -q -j 1 -H 20 -e 2 --allow-real -o lp2.rbm
    stack -o lpath.dbn lp.rbm lp2.rbm
    joint -q -j 1 -b 20 -H 20 -e 2 -m l=l.tz -p l=lpath.dbn -m r=r.tz -p r=rp.rbm -o deep.tz
    names=$(for i in 0 1 2 3 4 5; do attr deep.tz layer.$i.name; done | tr '\n' ' ')
    [ "$names" = '"l" "l_h1" "l_h2" "joint" "r_h1" "r" ' ]
    # DBN levels: W and recognition biases as trained, the middle layer's
    # generative bias the visible bias of the level above it
    cmp <(tensor export npy --name W1 deep.tz) <(tensor export npy --name W1 lpath.dbn)
    cmp <(tensor export npy --name W2 deep.tz) <(tensor export npy --name W2 lpath.dbn)
    cmp <(tensor export npy --name l_h1.up_bias deep.tz) <(tensor export npy --name hbias1 lpath.dbn)
    cmp <(tensor export npy --name l_h2.up_bias deep.tz) <(tensor export npy --name hbias2 lpath.dbn)
    cmp <(tensor export npy --name l_h1.bias deep.tz) <(tensor export npy --name vbias2 lpath.dbn)
    encode -q deep.tz -m r=r.tz -L l | tensor export csv > lgen.csv
    csv_range lgen.csv
    # a DBM chain as a pathway of a multimodal DBM
    encode -q -j 1 lb.rbm l.tz | rbm-train -q -j 1 --dbm-top -H 20 -e 2 --allow-real -o lb2.rbm
    stack --dbm -o lpath.dbm lb.rbm lb2.rbm
    joint --dbm -q -j 1 -b 20 -H 20 --pretrain-epochs 2 -e 0 -m l=l.tz -p l=lpath.dbm -m r=r.tz -p r=rb.rbm -o deepm.tz
    cmp <(tensor export npy --name W1 deepm.tz) <(tensor export npy --name W1 lpath.dbm)
    cmp <(tensor export npy --name W2 deepm.tz) <(tensor export npy --name W2 lpath.dbm)
    cmp <(tensor export npy --name l_h1.bias deepm.tz) <(tensor export npy --name h1.bias lpath.dbm)
    # a DBN is no pathway of a DBM, nor a DBM of a DBN
    run -1 --separate-stderr joint --dbm -q -o bad.tz -m l=l.tz -p l=lpath.dbn -m r=r.tz
    [ "$stderr" = "joint: lpath.dbn: a DBN; a multimodal DBM's pathway is an RBM or a DBM (or leave out --dbm)" ]
    run -1 --separate-stderr joint -q -o bad.tz -m l=l.tz -p l=lpath.dbm -m r=r.tz
    [ "$stderr" = "joint: lpath.dbm: a DBM; its pathway in a multimodal DBN is an RBM or a DBN (or use --dbm)" ]
}

@test "joint --fine-tune: up-down fine-tuning of a multimodal DBN" {
    joint $MDBN -e 3 -o f0.tz
    # rate 0: the pathways untied (R = W), nothing else moves, inference unchanged
    joint $MDBN -e 3 --fine-tune 1 --fine-tune-rate 0 -o z.tz
    cmp <(tensor export npy --name R1 z.tz) <(tensor export npy --name W1 z.tz)
    cmp <(tensor export npy --name W1 z.tz) <(tensor export npy --name W1 f0.tz)
    cmp <(encode -q z.tz -m l=l.tz -L label | tensor export csv) \
        <(encode -q f0.tz -m l=l.tz -L label | tensor export csv)
    # the generative error of the wake draws falls epoch by epoch
    joint $MDBN -e 3 --fine-tune 6 --log ft.tsv -o f6.tz
    [ "$(grep -c '^fine-tune' ft.tsv)" = 6 ]
    grep '^fine-tune' ft.tsv | cut -f 4 | awk 'NR > 1 && $1 >= prev { bad = 1 } { prev = $1 } END { exit bad }'
    [ "$(tensor info f6.tz | grep -c '^name: *R[0-9]')" = 2 ]
    [ "$(attr f6.tz train.fine_tune_epochs)" = 6 ]
    run ! cmp <(tensor export npy --name R1 f6.tz) <(tensor export npy --name W1 f6.tz)
    # the untied model is read back: recognition through R
    encode -q f6.tz -m l=l.tz -m r=r.tz -L label | tensor export csv > p.csv
    [ "$(wc -l < p.csv)" = 500 ]
    # interrupted during fine-tuning and resumed: the same model
    run -143 joint $MDBN -e 3 --fine-tune 6 --stop-after-batches 100 -o fp.tz
    joint $MDBN -e 3 --fine-tune 6 --resume -o fp.tz
    for t in R1 R2 W1 W3 joint.bias l_h1.up_bias l.bias; do
        cmp <(tensor export npy --name $t fp.tz) <(tensor export npy --name $t f6.tz)
    done
    # rows missing a modality are left out of fine-tuning
    joint -q -j 1 -b 20 -H 20 -e 2 --fine-tune 2 -m l=l.tz -p l=lp.rbm -m r=rnan.tz -p r=rp.rbm -o fn.tz
    run -2 --separate-stderr joint $MDBM --fine-tune 2 -o bad.tz
    [ "${stderr_lines[0]}" = "joint: --fine-tune is the up-down algorithm of a multimodal DBN; a DBM trains jointly with -e N" ]
}
