#!/usr/bin/env bats
# stack.bats - tests for stack(1): composing DBNs and DBMs from RBMs (the
# keys, the weights copied byte for byte, the DBM bias rule), every
# bad-input message, joint DBM training and DBN fine-tuning (log,
# determinism, --stop-after-batches / --resume identity, a real SIGTERM),
# and a label layer that classifies above chance.  Small sizes: 500 digits
# and 784-50-30 models; the data and RBMs are made in helpers/deep.bash.

bats_require_minimum_version 1.5.0

load helpers/deep

@test "stack: --help on stdout, --version" {
    run --separate-stderr stack --help
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${lines[0]}" = "Usage: stack -o MODEL [OPTION]... L1.rbm L2.rbm ..." ]
    for o in output dbm fine-tune force labels classes epochs batch \
             learning-rate lr-decay lr-min momentum initial-momentum \
             momentum-epochs weight-decay chains sweeps mf-iters mf-tol damping \
             sparsity sparsity-cost rebinarize cd-steps allow-real seed threads \
             log checkpoint-every resume stop-after-batches quiet; do
        [[ "$output" == *"--$o"* ]] || { echo "missing --$o"; false; }
    done
    run --separate-stderr stack --version
    [ "$output" = "stack (rbmkit) 0.1.0" ]
}

@test "stack: a DBN from two RBMs keeps their parameters byte for byte" {
    stack -o dbn.dbn l1.rbm l2.rbm
    [ "$(attr dbn.dbn model.type)" = '"dbn"' ]
    [ "$(attr dbn.dbn dbn.levels)" = 2 ]
    [ "$(attr dbn.dbn level.1.visible)" = '"bernoulli"' ]
    [ "$(attr dbn.dbn level.2.up_scale)" = 1 ]
    tensor export npy --name W1 dbn.dbn > W1.npy
    "$PY" -c 'import numpy as np; a = np.load("W1.npy"); assert a.shape == (784, 50) and a.dtype == np.float32, a.shape'
    cmp W1.npy <(tensor export npy --name W l1.rbm)
    cmp <(tensor export npy --name W2 dbn.dbn) <(tensor export npy --name W l2.rbm)
    cmp <(tensor export npy --name hbias1 dbn.dbn) <(tensor export npy --name hbias l1.rbm)
    cmp <(tensor export npy --name vbias2 dbn.dbn) <(tensor export npy --name vbias l2.rbm)
}

@test "stack --dbm: layers and edges, weights copied, shared biases averaged" {
    stack --dbm -o dbm.dbm b1.rbm b2.rbm
    [ "$(attr dbm.dbm model.type)" = '"dbm"' ]
    [ "$(attr dbm.dbm dbm.layers)" = 3 ]
    [ "$(attr dbm.dbm layer.0.name)" = '"v"' ]
    [ "$(attr dbm.dbm layer.0.units)" = 784 ]
    [ "$(attr dbm.dbm layer.1.name)" = '"h1"' ]
    [ "$(attr dbm.dbm layer.1.unit)" = '"bernoulli"' ]
    [ "$(attr dbm.dbm layer.1.units)" = 50 ]
    [ "$(attr dbm.dbm layer.2.name)" = '"h2"' ]
    [ "$(attr dbm.dbm layer.2.units)" = 30 ]
    [ "$(attr dbm.dbm edge.1.from)" = '"v"' ]
    [ "$(attr dbm.dbm edge.1.to)" = '"h1"' ]
    [ "$(attr dbm.dbm edge.2.from)" = '"h1"' ]
    [ "$(attr dbm.dbm edge.2.to)" = '"h2"' ]
    # weights and the end biases unchanged
    cmp <(tensor export npy --name W1 dbm.dbm) <(tensor export npy --name W b1.rbm)
    cmp <(tensor export npy --name W2 dbm.dbm) <(tensor export npy --name W b2.rbm)
    cmp <(tensor export npy --name v.bias dbm.dbm) <(tensor export npy --name vbias b1.rbm)
    cmp <(tensor export npy --name h2.bias dbm.dbm) <(tensor export npy --name hbias b2.rbm)
    # h1, where the two RBMs meet: (b1's hbias + b2's vbias) / 2 (f32 sums:
    # measured difference 4.5e-8 against the double-precision mean)
    paste -d, <(tensor export csv --name h1.bias dbm.dbm) \
        <(tensor export csv --name hbias b1.rbm) \
        <(tensor export csv --name vbias b2.rbm) > bias.csv
    [ "$(wc -l < bias.csv)" -eq 50 ]
    awk -F, '{ d = $1 - ($2 + $3) / 2; if (d < 0) d = -d; if (d > m) m = d; if ($2 != $3) diff = 1 }
             END { print "max |h1.bias - mean| =", m; exit !(m < 1e-6 && diff) }' bias.csv
}

@test "stack --dbm: three RBMs, a middle one pretrained with doubling both ways" {
    encode -j 1 b1.rbm d500.tz |
        rbm-train -q -j 1 --dbm-bottom --dbm-top -H 30 -e 1 --allow-real -o mid.rbm
    encode -j 1 b1.rbm d500.tz | encode -j 1 mid.rbm |
        rbm-train -q -j 1 --dbm-top -H 20 -e 1 --allow-real -o top3.rbm
    stack --dbm -o d3.dbm b1.rbm mid.rbm top3.rbm
    [ "$(attr d3.dbm dbm.layers)" = 4 ]
    [ "$(attr d3.dbm layer.3.name)" = '"h3"' ]
    [ "$(attr d3.dbm edge.3.from)" = '"h2"' ]
    [ "$(attr d3.dbm edge.3.to)" = '"h3"' ]
    paste -d, <(tensor export csv --name h2.bias d3.dbm) \
        <(tensor export csv --name hbias mid.rbm) \
        <(tensor export csv --name vbias top3.rbm) |
        awk -F, '{ d = $1 - ($2 + $3) / 2; if (d < 0) d = -d; if (d > m) m = d }
                 END { exit !(NR == 30 && m < 1e-6) }'
    # the middle RBM in the top place is not what it was pretrained for
    run -1 --separate-stderr stack --dbm -o x.dbm b1.rbm mid.rbm mid.rbm
    [ "$stderr" = "stack: mid.rbm has 30 hidden units but mid.rbm has 50 visible units" ]
    run -1 --separate-stderr stack --dbm -o x.dbm b1.rbm b2.rbm top3.rbm
    [ "$stderr" = "stack: b2.rbm was not pretrained for this place in a DBM (it needs doubled inputs both ways); retrain it with rbm-train --dbm-bottom --dbm-top, or use --force" ]
}

@test "stack: layers whose sizes or unit types do not chain" {
    rbm-train -q -j 1 -H 20 -e 1 -o l20.rbm d500.tz
    run -1 --separate-stderr stack -o x.dbn l1.rbm l20.rbm
    [ "$stderr" = "stack: level 1 has 50 hidden units but level 2 has 784 visible units" ]
    run -1 --separate-stderr stack --dbm -o x.dbm b1.rbm l20.rbm
    [ "$stderr" = "stack: b1.rbm has 50 hidden units but l20.rbm has 784 visible units" ]
    rbm-train -q -j 1 --hidden-type gaussian -l 0.01 -H 50 -e 1 -o g1.rbm d500.tz
    run -1 --separate-stderr stack -o x.dbn g1.rbm l2.rbm
    [ "$stderr" = "stack: level 1 has gaussian hidden units but level 2 has bernoulli visible units" ]
    run -1 --separate-stderr stack --dbm -o x.dbm g1.rbm b2.rbm
    [ "$stderr" = "stack: g1.rbm has gaussian hidden units but b2.rbm has bernoulli visible units" ]
    [ ! -e x.dbn ]
    [ ! -e x.dbm ]
}

@test "stack: doubling must match the model unless --force" {
    run -1 --separate-stderr stack --dbm -o x.dbm l1.rbm b2.rbm
    [ "$stderr" = "stack: l1.rbm was not pretrained for this place in a DBM (it needs a doubled bottom-up input); retrain it with rbm-train --dbm-bottom, or use --force" ]
    run -1 --separate-stderr stack --dbm -o x.dbm b1.rbm l2.rbm
    [ "$stderr" = "stack: l2.rbm was not pretrained for this place in a DBM (it needs a doubled top-down input); retrain it with rbm-train --dbm-top, or use --force" ]
    [ ! -e x.dbm ]
    stack --dbm --force -o forced.dbm l1.rbm l2.rbm
    [ "$(attr forced.dbm model.type)" = '"dbm"' ]
    cmp <(tensor export npy --name W1 forced.dbm) <(tensor export npy --name W l1.rbm)
    # and the other way: DBM-pretrained RBMs in a DBN
    run -1 --separate-stderr stack -o x.dbn b1.rbm b2.rbm
    [ "$stderr" = "stack: level 1 was pretrained for a DBM (--dbm-bottom/--dbm-top); use stack --dbm, or --force" ]
    stack --force -o forced.dbn b1.rbm b2.rbm
    [ "$(attr forced.dbn level.1.up_scale)" = 2 ]
    [ "$(attr forced.dbn level.2.down_scale)" = 2 ]
}

@test "stack: a model of the wrong kind for the mode" {
    stack --dbm -o dbm.dbm b1.rbm b2.rbm
    stack -o dbn.dbn l1.rbm l2.rbm
    run -1 --separate-stderr stack -o x.dbn dbm.dbm
    [ "$stderr" = "stack: dbm.dbm: a DBM; a DBM trains with --dbm" ]
    run -1 --separate-stderr stack --fine-tune -e 1 -o x.dbn dbm.dbm d500.tz
    [ "$stderr" = "stack: dbm.dbm: a DBM; a DBM trains with --dbm" ]
    run -1 --separate-stderr stack --dbm -o x.dbm dbn.dbn
    [ "$stderr" = "stack: dbn.dbn: a DBN; --dbm composes RBMs or trains a DBM further" ]
    run -1 --separate-stderr stack --dbm -e 1 -o x.dbm dbn.dbn d500.tz
    [ "$stderr" = "stack: dbn.dbn: a DBN; --dbm composes RBMs or trains a DBM further" ]
    # a model among RBMs
    run -1 --separate-stderr stack -o x.dbn dbn.dbn l2.rbm
    [ "$stderr" = "stack: dbn.dbn: a dbn, not an rbm: give either RBMs or one model" ]
    # one RBM alone
    run -1 --separate-stderr stack -o x.dbn l1.rbm
    [ "$stderr" = "stack: l1.rbm: one RBM; a DBN needs at least two" ]
    run -1 --separate-stderr stack --dbm -o x.dbm b1.rbm
    [ "$stderr" = "stack: b1.rbm: one RBM; a DBM needs at least two (or one DBM to train further)" ]
    [ ! -e x.dbn ]
    [ ! -e x.dbm ]
}

@test "stack: usage errors exit 2 with the message and a hint" {
    run -2 --separate-stderr stack l1.rbm l2.rbm
    [ "${stderr_lines[0]}" = "stack: no model file given (-o MODEL)" ]
    [ "${stderr_lines[1]}" = "Try 'stack --help' for more information." ]
    [ "${#stderr_lines[@]}" -eq 2 ]
    run -2 --separate-stderr stack -o x.dbn
    [ "${stderr_lines[0]}" = "stack: no models given" ]
    run -2 --separate-stderr stack --dbm --fine-tune -o x b1.rbm b2.rbm
    [ "${stderr_lines[0]}" = "stack: --fine-tune is for DBNs; a DBM trains with --dbm -e N" ]
    run -2 --separate-stderr stack --labels y500.tz -o x l1.rbm l2.rbm
    [ "${stderr_lines[0]}" = "stack: --labels needs --dbm" ]
    run -2 --separate-stderr stack -e 2 -o x l1.rbm l2.rbm d500.tz
    [ "${stderr_lines[0]}" = "stack: training a DBN is --fine-tune; a DBM is --dbm" ]
    run -2 --separate-stderr stack --bogus -o x l1.rbm l2.rbm
    [ "${stderr_lines[0]}" = "stack: unknown option '--bogus'" ]
    [ ! -e x ]
    [ ! -e x.dbn ]
}

@test "stack: a data operand without -e, data of the wrong width, bad labels" {
    run -1 --separate-stderr stack -o x.dbn l1.rbm l2.rbm d500.tz
    [ "$stderr" = "stack: d500.tz: not a model file (no model.type attribute); data needs --epochs (-e N) to train on" ]
    "$T" rand 50 16 1 > r16.tz
    run -1 --separate-stderr stack --dbm -q -j 1 -e 1 -o x.dbm b1.rbm b2.rbm r16.tz
    [ "$stderr" = "stack: r16.tz: rows of 16 values, the model's visible layer has 784 units" ]
    run -1 --separate-stderr stack --dbm -q -j 1 -e 1 -o x.dbm b1.rbm b2.rbm < r16.tz
    [ "$stderr" = "stack: stdin: rows of 16 values, the model's visible layer has 784 units" ]
    run -1 --separate-stderr stack --fine-tune -q -j 1 -e 1 -o x.dbn l1.rbm l2.rbm r16.tz
    [ "$stderr" = "stack: r16.tz: rows of 16 values, the model's visible layer has 784 units" ]
    tensor head -n 100 d500.tz > d100.tz
    run -1 --separate-stderr stack --dbm -q -j 1 -e 1 --labels y500.tz -o x.dbm b1.rbm b2.rbm d100.tz
    [ "$stderr" = "stack: y500.tz: 500 label rows for 100 data rows" ]
    run -1 --separate-stderr stack --dbm -q -j 1 -e 1 --labels y500.tz --classes 5 -o x.dbm b1.rbm b2.rbm d500.tz
    [ "$stderr" = "stack: y500.tz: row 1: label 5 is not a class index below 5" ]
    [ ! -e x.dbm ]
    [ ! -e x.dbn ]
}

@test "stack --dbm -e 2 on 500 digits: a log of 2 epochs, deterministic for a seed" {
    stack --dbm -q -j 1 -e 2 -s 3 --log t.tsv -o a.dbm b1.rbm b2.rbm d500.tz
    cat t.tsv
    [ "$(wc -l < t.tsv)" -eq 3 ]
    [ "$(head -n 1 t.tsv)" = "$(printf 'epoch\tseconds\trecon_error\tlearning_rate\tmf_sweeps')" ]
    # recon_error: squared error of the digits from their mean-field
    # reconstructions, positive and finite (measured: 64.5)
    awk -F'\t' 'NR > 1 { if ($1 != NR - 1 || !($3 > 0 && $3 < 784)) exit 1 }' t.tsv
    [ "$(attr a.dbm model.type)" = '"dbm"' ]
    [ "$(attr a.dbm train.epochs)" = 2 ]
    stack --dbm -q -j 1 -e 2 -s 3 -o b.dbm b1.rbm b2.rbm < d500.tz
    cmp a.dbm b.dbm
    stack --dbm -q -j 1 -e 2 -s 4 -o c.dbm b1.rbm b2.rbm d500.tz
    ! cmp -s a.dbm c.dbm || false
    # continuing a DBM file trains further from its parameters
    stack --dbm -q -j 1 -e 1 -o a2.dbm a.dbm d500.tz
    [ "$(attr a2.dbm dbm.layers)" = 3 ]
    ! cmp -s a.dbm a2.dbm || false
}

@test "stack: interrupted (--stop-after-batches) and resumed runs equal uninterrupted ones" {
    # joint DBM training, with a label layer, and DBN fine-tuning
    stack -o dbn.dbn l1.rbm l2.rbm
    for mode in --dbm "--dbm --labels y500.tz" --fine-tune; do
        models="b1.rbm b2.rbm"
        [ "$mode" = --fine-tune ] && models=dbn.dbn
        args="$mode -q -j 1 -e 3 -b 50 -k 2"
        stack $args -o full.m $models d500.tz
        rm -f part.m part.m.ckpt
        run -143 --separate-stderr stack $args --stop-after-batches 13 -o part.m $models d500.tz
        [ "$stderr" = "stack: interrupted; checkpoint saved to part.m.ckpt (epoch 2, batch 3)" ]
        [ ! -e part.m ]
        [ -s part.m.ckpt ]
        stack $args --resume -o part.m $models d500.tz
        cmp full.m part.m
        [ ! -e part.m.ckpt ]
    done
    # a checkpoint is only resumed with the options it was made with
    run -143 stack --dbm -q -j 1 -e 3 --stop-after-batches 2 -o ck.dbm b1.rbm b2.rbm d500.tz
    run -1 --separate-stderr stack --dbm -q -j 1 -e 3 -s 9 --resume -o ck.dbm b1.rbm b2.rbm d500.tz
    [ "$stderr" = "stack: ck.dbm.ckpt: checkpoint was made with other options or data" ]
    run -1 --separate-stderr stack --dbm -q -j 1 -e 3 --resume -o none.dbm b1.rbm b2.rbm d500.tz
    [ "$stderr" = "stack: none.dbm.ckpt: no checkpoint to resume from" ]
}

@test "stack: a real SIGTERM saves MODEL.ckpt and exits 143; --resume ends identical" {
    # the tiny 8-5-4 DBM: 2500 epochs of 600 rows take about 1.5 s
    args="--dbm -q -j 1 -e 2500 -b 100"
    rm -f sig.dbm sig.dbm.ckpt sig.tsv
    stack $args --log sig.tsv -o sig.dbm u1.rbm u2.rbm tiny.tz 2> sig.err &
    pid=$!
    # wait until the first epoch is logged (the handler is set), then stop it
    for i in $(seq 1 300); do
        [ -f sig.tsv ] && [ "$(wc -l < sig.tsv)" -ge 2 ] && break
        sleep 0.05
    done
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    cat sig.err
    [ "$rc" -eq 143 ]
    grep -q "^stack: interrupted; checkpoint saved to sig.dbm.ckpt (epoch " sig.err
    [ "$(wc -l < sig.err)" -eq 1 ]
    [ -s sig.dbm.ckpt ]
    [ ! -e sig.dbm ]
    stack $args --resume -o sig.dbm u1.rbm u2.rbm tiny.tz
    [ ! -e sig.dbm.ckpt ]
    stack $args -o ref.dbm u1.rbm u2.rbm tiny.tz
    cmp ref.dbm sig.dbm
}

@test "stack --dbm --labels: a label layer whose posteriors classify above chance" {
    # 784-100-50 pretrained 10 epochs each, then 5 joint epochs of 25
    # batches with the labels: measured 62.2% of the 500 training digits
    # (majority class: 13.2%; chance 10%)
    rbm-train -q -j 1 --dbm-bottom -H 100 -e 10 -o c1.rbm d500.tz
    encode -j 1 c1.rbm d500.tz |
        rbm-train -q -j 1 --dbm-top -H 50 -e 10 --allow-real -o c2.rbm
    stack --dbm -q -j 1 -e 5 -b 20 -l 0.01 --labels y500.tz -o lab.dbm c1.rbm c2.rbm d500.tz
    [ "$(attr lab.dbm dbm.layers)" = 4 ]
    [ "$(attr lab.dbm layer.3.name)" = '"label"' ]
    [ "$(attr lab.dbm layer.3.unit)" = '"softmax"' ]
    [ "$(attr lab.dbm layer.3.units)" = 10 ]
    [ "$(attr lab.dbm edge.3.from)" = '"h2"' ]
    [ "$(attr lab.dbm edge.3.to)" = '"label"' ]
    encode -j 1 -L label lab.dbm d500.tz > p.tz
    tensor info p.tz | grep -Eq '^shape: +\[10\] per record$'
    tensor export csv p.tz > p.csv
    # the default layer of encode is the top hidden layer, not the labels
    encode -j 1 lab.dbm d500.tz | tensor info - | grep -Eq '^shape: +\[50\] per record$'
    run "$PY" -c '
import numpy as np
p = np.loadtxt("p.csv", delimiter=",")
y = np.loadtxt("y500.csv").astype(int)
assert p.shape == (500, 10), p.shape
assert (p >= 0).all() and (p <= 1).all()
assert np.abs(p.sum(1) - 1).max() < 1e-5, np.abs(p.sum(1) - 1).max()
acc = (p.argmax(1) == y).mean()
print("accuracy %.3f" % acc)
assert acc > 0.30, acc'
    echo "$output"
    [ "$status" -eq 0 ]
    # one-hot label rows train the same model as class indices
    "$PY" -c '
import numpy as np
y = np.loadtxt("y500.csv").astype(int)
np.savetxt("onehot.csv", np.eye(10)[y], fmt="%d", delimiter=",")'
    tensor import csv --dtype u8 onehot.csv > onehot.tz
    stack --dbm -q -j 1 -e 5 -b 20 -l 0.01 --labels onehot.tz -o lab2.dbm c1.rbm c2.rbm d500.tz
    cmp lab.dbm lab2.dbm
}

@test "stack: an output that cannot be written is refused before any training" {
    run -1 --separate-stderr stack --dbm -e 1000 -o /nonexistent/dir/x.dbm b1.rbm b2.rbm d500.tz
    [ "$stderr" = "stack: /nonexistent/dir/x.dbm: cannot write here: No such file or directory" ]
    run -2 --separate-stderr stack --dbm -e 1 -o '' b1.rbm b2.rbm d500.tz
    [ "${stderr_lines[0]}" = "stack: empty output file name" ]
    mkdir ro && chmod 555 ro
    if [ "$(id -u)" != 0 ]; then
        run -1 --separate-stderr stack -o ro/x.dbn l1.rbm l2.rbm
        [ "$stderr" = "stack: ro/x.dbn: cannot write here: Permission denied" ]
    fi
    [ -z "$(ls ro)" ]
}
