#!/usr/bin/env bats
# joint_man.bats - the documentation of the multimodal models against the
# tools: the EXAMPLES of joint(1), the multimodal examples of encode(1),
# rbm-sample(1) and rbmkit(7), run at a small size in a directory holding
# only the two data files of examples/data; joint(1) against joint --help
# (options and defaults).

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/man

# need_joint: the current directory gets the files the joint(1) examples
# make (made once per file)
need_joint() {
    local ex="$BATS_FILE_TMPDIR/jx"
    if [ ! -f "$ex/.done" ]; then
        (mkdir -p "$ex" && cd "$ex" &&
         cp "$TOP/examples/data/mnist-2k.tz" "$TOP/examples/data/mnist-2k-labels.tz" . &&
         man_examples "$MAN/man1/joint.1" | small > cmds.txt &&
         run_cmds < cmds.txt) || return 1
        touch "$ex/.done"
    fi
    cp -r "$ex/." .
}

@test "joint(1): every command of EXAMPLES runs (small size)" {
    need_joint
    [ "$(wc -l < cmds.txt)" -ge 10 ]
    run tensor info mdbm.tz
    [[ "$output" == *'model.type = "dbm"'* ]]
    [[ "$output" == *'joint.modalities = "left,right,label"'* ]]
    run tensor info mdbn.tz
    [[ "$output" == *'model.type = "mdbn"'* ]]
    run tensor info probs.tz
    [[ "$output" == *"shape:      [10] per record"* ]]
    [[ "$output" == *"records:    2000"* ]]
    run tensor info right-gen.tz
    [[ "$output" == *"shape:      [392] per record"* ]]
    [ "$(head -c 8 halves.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    run tensor info part.tz
    [[ "$output" == *"joint.right.absent_rows = 1000"* ]]
    # the interrupted and resumed run equals an uninterrupted one
    [ ! -e r.tz.ckpt ]
    grep -- '--stop-after-batches' cmds.txt | sed 's/ --stop-after-batches [0-9]*//; s/-o r.tz/-o u.tz/' > again.txt
    bash -c "$(cat again.txt)"
    for t in W1 W2 W3 joint.bias left_h1.bias; do
        cmp <(tensor export npy --name $t r.tz) <(tensor export npy --name $t u.tz)
    done
}

@test "encode(1), rbm-sample(1): the multimodal examples run" {
    need_joint
    for p in encode rbm-sample; do
        man_examples "$MAN/man1/$p.1" | grep -E 'mdbm\.tz|mdbn\.tz' | small > cmds-$p.txt
        [ "$(wc -l < cmds-$p.txt)" -ge 2 ]
        run_cmds < cmds-$p.txt
    done
    run tensor info right-mf.tz
    [[ "$output" == *"shape:      [392] per record"* ]]
    [ "$(head -c 8 halves.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
}

@test "rbmkit(7): the multimodal pipeline runs (small size)" {
    cp "$TOP/examples/data/mnist-2k.tz" "$TOP/examples/data/mnist-2k-labels.tz" .
    man_examples "$MAN/man7/rbmkit.7" | sed -n '/slice -c 0:14/,$p' | small > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 8 ]
    run_cmds < cmds.txt
    [ "$(head -c 8 halves.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
}

@test "joint(1) and joint --help list the same options, with the same defaults" {
    check_page joint "$MAN/man1/joint.1"
}

# readme_multimodal: the commands of the README's multimodal code block
readme_multimodal() {
    awk '
    /^### Multimodal models/ { sec = 1; next }
    sec && /^```sh/ { code = 1; next }
    code && /^```/ { exit }
    code {
        l = $0; sub(/^[ \t]+/, "", l)
        if (l == "") next
        sub(/[ \t]+#.*$/, "", l)
        print l
    }' "$BATS_TEST_DIRNAME/../README.md"
}

@test "README: the multimodal pipeline runs (small size) and infers labels above chance" {
    readme_multimodal | sed "s|examples/data/|$TOP/examples/data/|g" > cmds.txt
    [ "$(wc -l < cmds.txt)" -ge 9 ]
    run_cmds < cmds.txt
    [ "$(head -c 8 halves.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]
    # the label from the left half alone, on the 2000 training digits
    e=$(tensor export csv probs.tz | paste -d, - <(tensor export csv "$TOP/examples/data/mnist-2k-labels.tz") |
        awk -F, '{ m = 1; for (i = 2; i < NF; i++) if ($i > $m) m = i; if (m - 1 != $NF) n++ }
                 END { printf "%.4f", n / NR }')
    echo "# left-half label error: $e"
    awk -v e="$e" 'BEGIN { exit !(e < 0.6) }'
}
