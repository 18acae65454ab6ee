#!/usr/bin/env bats
# stack_man.bats - the documentation of the deep models against the tools:
# the EXAMPLES of stack(1) and the deep-model examples of encode(1),
# rbm-sample(1) and ais-estimate(1), read from the man pages and run at a
# small size; the README's deep-model pipeline; the option lists and
# defaults of the man pages against --help; the tensor and attribute names
# of formats/model-keys.md against real files; mandoc -Tlint.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/man

# readme_deep: the commands of the README's deep-model code block
readme_deep() {
    awk '
    /^### Deep models/ { sec = 1; next }
    sec && /^```sh/ { code = 1; next }
    code && /^```/ { exit }
    code {
        l = $0; sub(/^[ \t]+/, "", l)
        if (l == "" || l ~ /^#/) next
        if (l ~ /\|$/ || l ~ /\|[ \t]*#/) { sub(/[ \t]*#.*$/, "", l); acc = acc l " "; next }
        print acc l; acc = ""
    }' "$BATS_TEST_DIRNAME/../README.md"
}

# the data the examples name: train.tz (300 binary digits), grey.tz (the
# same as u8 grey levels), labels.tz (their classes), test.tz (100 more)
make_data() {
    local d="$TOP/examples/data"
    tensor head -n 300 "$d/mnist-2k.tz" > grey.tz
    tensor binarize grey.tz > train.tz
    tensor head -n 300 "$d/mnist-2k-labels.tz" > labels.tz
    tensor slice -r 300:400 "$d/mnist-2k.tz" | tensor binarize > test.tz
}

# stack_examples DIR: the data and the EXAMPLES of stack(1) in DIR
stack_examples() {
    mkdir -p "$1" && cd "$1" || return 1
    make_data
    man_examples "$MAN/man1/stack.1" | small > cmds.txt
    run_cmds < cmds.txt
}

# need_models: the current directory gets the files the stack(1) examples
# make (made once per file, by the first test that needs them)
need_models() {
    local ex="$BATS_FILE_TMPDIR/ex"
    if [ ! -f "$ex/.done" ]; then
        (stack_examples "$ex") || return 1
        touch "$ex/.done"
    fi
    cp -r "$ex/." .
}

attrs() { tensor info "$1" | sed -n 's/^attribute: *\([^ ]*\) = .*/\1/p'; }
names() { tensor info "$1" | sed -n 's/^name: *//p'; }

@test "stack(1): every command of EXAMPLES runs (small size)" {
    need_models
    man_examples "$MAN/man1/stack.1" > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 15 ]
    # the composed and the trained DBM
    run tensor info dbm0.dbm
    [[ "$output" == *'model.type = "dbm"'* ]]
    [[ "$output" == *'layer.2.name = "h2"'* ]]
    [[ "$output" != *train.epochs* ]]
    run tensor info dbm.dbm
    [[ "$output" == *"train.epochs = 2"* ]]
    [ "$(head -n 1 dbm.tsv)" = "$(printf 'epoch\tseconds\trecon_error\tlearning_rate\tmf_sweeps')" ]
    [ "$(wc -l < dbm.tsv)" -eq 3 ]
    # the label layer and the class probabilities of the 100 test digits
    run tensor info lab.dbm
    [[ "$output" == *'layer.3.name = "label"'* ]]
    [[ "$output" == *"layer.3.units = 10"* ]]
    run tensor info classes.tz
    [[ "$output" == *"shape:      [10] per record"* ]]
    [[ "$output" == *"records:    100"* ]]
    run tensor info codes.tz
    [[ "$output" == *"shape:      [12] per record"* ]]
    [ "$(head -c 8 dbm.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    # the DBN and its fine-tuned version (untied generative weights)
    [ "$(names dbn.dbn | tr '\n' ' ')" = "W1 vbias1 hbias1 W2 vbias2 hbias2 " ]
    [ "$(names tuned.dbn | tr '\n' ' ')" = "W1 vbias1 hbias1 G1 W2 vbias2 hbias2 " ]
    # both evaluations print their bound
    grep -q '(mean-field bound)$' out.*
    grep -q '(variational bound)$' out.*
    # the interrupted and resumed run equals an uninterrupted one
    [ ! -e r.dbm.ckpt ]
    stack -q --dbm -e 2 -o u.dbm dbm0.dbm train.tz
    cmp r.dbm u.dbm
}

@test "encode(1): the deep-model examples run" {
    need_models
    man_examples "$MAN/man1/encode.1" | grep -E '\.(dbm|dbn)( |$)' | small > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 4 ]
    run_cmds < cmds.txt
    run tensor info h1.tz
    [[ "$output" == *"shape:      [24] per record"* ]]
    [[ "$output" == *'data.values = "probabilities"'* ]]
    run tensor info top.tz
    [[ "$output" == *"shape:      [12] per record"* ]]
    run tensor info classes.tz
    [[ "$output" == *"shape:      [10] per record"* ]]
    run tensor info codes.tz
    [[ "$output" == *"shape:      [16] per record"* ]]
    [[ "$output" == *"records:    100"* ]]
}

@test "rbm-sample(1): the deep-model examples run" {
    need_models
    man_examples "$MAN/man1/rbm-sample.1" | grep -E '\.(dbm|dbn)( |$)' | small > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 3 ]
    run_cmds < cmds.txt
    [ "$(head -c 8 dbm.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    # the completed halves keep the clamped top halves of the test digits
    [ "$(tensor export csv halves.tz | cut -d, -f1-392)" = \
      "$(tensor export csv test.tz | cut -d, -f1-392)" ]
    run tensor info dbn-chain.tz
    [[ "$output" == *"records:    2"* ]]
    [[ "$output" == *'sample.output = "means"'* ]]
}

@test "ais-estimate(1): the deep-model examples run" {
    need_models
    # the small DBM of the last example: 16 units in h1 are enumerated
    rbm-train -q -o s1.rbm -H 16 -e 1 --dbm-bottom --emit train.tz |
        rbm-train -q -o s2.rbm -H 8 -e 1 --dbm-top
    stack --dbm -o small.dbm s1.rbm s2.rbm
    man_examples "$MAN/man1/ais-estimate.1" | grep -E '\.(dbm|dbn)( |$)' | small > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 3 ]
    run_cmds < cmds.txt
    grep -q '"bound": "mean-field"' out.1
    grep -q '"test_logprob_bound": -' out.1
    grep -Eq '^log Z \(top RBM\) = .* \(AIS, 10 runs, 300 betas\)$' out.2
    grep -Eq '^test log p\(v\) >= .* nats over 100 rows \(variational bound\)$' out.2
    grep -Eq '^log Z = [0-9.]+ \(exact, 65536 states\)$' out.3
}

@test "README: the deep-model pipeline runs (small size)" {
    readme_deep | sed "s|examples/data/|$TOP/examples/data/|g" | small > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 8 ]
    run_cmds < cmds.txt
    grep -q '(mean-field bound)$' out.*
    run tensor info codes.tz
    [[ "$output" == *"shape:      [10] per record"* ]]
    [[ "$output" == *"records:    500"* ]]
    [ -s dbm.png ]
}

@test "stack(1) and stack --help list the same options, with the same defaults" {
    check_page stack "$MAN/man1/stack.1"
}

@test "encode(1), rbm-sample(1), ais-estimate(1), rbm-train(1) have every option of --help" {
    for t in encode rbm-sample ais-estimate rbm-train; do
        for o in $(help_longopts $t); do
            in_page "$MAN/man1/$t.1" "$o" || { echo "$t.1 lacks $o"; false; }
        done
    done
}

@test "formats/model-keys.md: the tensor names and keys of dbn and dbm files" {
    need_models
    keys="$BATS_TEST_DIRNAME/../formats/model-keys.md"
    # DBN: W<k>, vbias<k>, hbias<k>, G<k> (below the top, after fine-tuning)
    [ "$(attrs tuned.dbn | grep -E '^(dbn|level)\.' | tr '\n' ' ')" = \
      "dbn.levels level.1.visible level.1.hidden level.1.softmax_group level.1.up_scale level.1.down_scale level.2.visible level.2.hidden level.2.softmax_group level.2.up_scale level.2.down_scale " ]
    # a gaussian bottom level adds sigma1 (here composed with --force from
    # RBMs pretrained for a DBM, which keeps their scales)
    tensor head -n 100 train.tz | tensor pca -k 10 | tensor standardize > g.tz
    rbm-train -q -V gaussian -H 6 -e 1 --dbm-bottom -o g1.rbm --emit g.tz |
        rbm-train -q -H 4 -e 1 --dbm-top -o g2.rbm
    stack -f -o g.dbn g1.rbm g2.rbm
    [ "$(names g.dbn | tr '\n' ' ')" = "W1 vbias1 hbias1 sigma1 W2 vbias2 hbias2 " ]
    run tensor info g.dbn
    [[ "$output" == *"level.1.up_scale = 2"* ]]
    # DBM: <layer>.bias, <layer>.sigma, then W<e>; layer.<i>.*, edge.<e>.*
    [ "$(names lab.dbm | tr '\n' ' ')" = "v.bias h1.bias h2.bias label.bias W1 W2 W3 " ]
    [ "$(attrs lab.dbm | grep -E '^(dbm|layer|edge)\.' | tr '\n' ' ')" = \
      "dbm.layers layer.0.name layer.0.unit layer.0.units layer.0.softmax_group layer.0.visible layer.1.name layer.1.unit layer.1.units layer.1.softmax_group layer.1.visible layer.2.name layer.2.unit layer.2.units layer.2.softmax_group layer.2.visible layer.3.name layer.3.unit layer.3.units layer.3.softmax_group layer.3.visible edge.1.from edge.1.to edge.2.from edge.2.to edge.3.from edge.3.to " ]
    stack --dbm -o g.dbm g1.rbm g2.rbm
    [ "$(names g.dbm | tr '\n' ' ')" = "v.bias v.sigma h1.bias h2.bias W1 W2 " ]
    # the provenance keys are those of the two tables
    doc() { sed -n "/^### Provenance attributes (\`$1\`)/,/^###* [^P]/p" "$keys" |
            grep -oE '`train\.[a-z0-9_]+`' | tr -d '`' | sort -u; }
    [ "$(doc 'stack --dbm')" = "$(attrs lab.dbm | grep '^train\.' | sort -u)" ]
    [ "$(doc stack)" = "$(attrs tuned.dbn | grep '^train\.' | sort -u)" ]
    # checkpoints: the trainer state of a DBM (labels included) and of fine-tuning
    run -143 stack -q --dbm -e 1 --labels labels.tz --stop-after-batches 1 -o c.dbm dbm0.dbm train.tz
    [ "$(names c.dbm.ckpt | grep '^train\.' | tr '\n' ' ')" = \
      "train.W1_inc train.W2_inc train.W3_inc train.v.bias_inc train.chain.v train.h1.bias_inc train.chain.h1 train.h2.bias_inc train.chain.h2 train.label.bias_inc train.chain.label train.rng train.state " ]
    [ "$(attrs c.dbm.ckpt | grep '^ckpt\.' | sort | tr '\n' ' ')" = "ckpt.batch ckpt.epoch ckpt.options ckpt.recon_sum " ]
    run -143 stack -q --fine-tune -e 1 --stop-after-batches 1 -o c.dbn dbn.dbn train.tz
    [ "$(names c.dbn.ckpt | tr '\n' ' ')" = "W1 vbias1 hbias1 G1 W2 vbias2 hbias2 train.rng " ]
    # every name reads as a tensor of its own
    for f in tuned.dbn g.dbn lab.dbm g.dbm c.dbm.ckpt c.dbn.ckpt; do
        for n in $(names "$f"); do
            tensor export npy --name "$n" "$f" > /dev/null
        done
    done
}

@test "the man pages pass mandoc -Tlint without warnings" {
    command -v mandoc > /dev/null || skip "mandoc is not installed"
    for p in "$MAN"/man*/*.[0-9]; do
        run mandoc -Tlint -Wwarning "$p"
        [ -z "$output" ] || { echo "$output"; false; }
    done
}
