#!/usr/bin/env bats
# ais-estimate: AIS and exact log Z on small trained RBMs of each visible
# type, the output formats, and every error pinned.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    cd "$T"
    # two noisy prototypes over 12 binary units
    python3 -c '
import random
random.seed(1)
for i in range(400):
    p = [1]*6 + [0]*6 if i % 2 else [0]*6 + [1]*6
    print(",".join(str(b if random.random() > 0.1 else 1 - b) for b in p))
' > bin.csv
    tensor import csv < bin.csv | tensor binarize > bin.tz
    rbm-train -q -o bin.rbm -H 8 -e 20 -s 1 bin.tz
    # gaussian: two clusters in 6 dimensions
    python3 -c '
import random
random.seed(2)
for i in range(400):
    m = 1.0 if i % 2 else -1.0
    print(",".join("%.4f" % random.gauss(m * (1 if j < 3 else -1), 0.7) for j in range(6)))
' > gauss.csv
    tensor import csv < gauss.csv > gauss.tz
    rbm-train -q -o gauss.rbm -V gaussian -H 6 -e 10 -s 1 gauss.tz
    # word counts over 10 words, two topics, documents of 3 or 5 words
    python3 -c '
import random
random.seed(3)
for i in range(300):
    c = [0]*10
    t = i % 2
    for w in range(3 if i % 3 else 5):
        c[random.randrange(5) + 5 * t if random.random() < 0.8 else random.randrange(10)] += 1
    print(",".join(map(str, c)))
' > words.csv
    tensor import csv < words.csv > words.tz
    rbm-train -q -o words.rbm -V replicated-softmax -H 6 -e 10 -s 1 words.tz
}

setup() {
    cd "$T"
}

# json field: field FILE KEY
field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

@test "--help on stdout lists every option with defaults, exit 0" {
    run --separate-stderr ais-estimate --help
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [[ "$output" == *"Usage: ais-estimate"* ]]
    for o in --runs --betas --base --length --exact --format --seed --threads; do
        [[ "$output" == *"$o"* ]]
    done
    [[ "$output" == *"(default 100)"* ]]
    [[ "$output" == *"(default 14500"* ]]
}

@test "--version" {
    run --separate-stderr ais-estimate --version
    [ "$status" -eq 0 ]
    [[ "$output" == "ais-estimate (rbmkit) "* ]]
}

@test "json: keys present and parsable, interval around the estimate" {
    ais-estimate bin.rbm bin.tz --betas 2000 --format json > out.json
    python3 -m json.tool out.json > /dev/null
    python3 -c '
import json, sys
d = json.load(open("out.json"))
for k in ("method", "logz", "logz_low", "logz_high", "runs", "betas",
          "test_logprob", "test_logprob_low", "test_logprob_high"):
    assert k in d, k
assert d["method"] == "ais" and d["runs"] == 100 and d["betas"] == 2000
assert d["logz_low"] <= d["logz"] <= d["logz_high"]
assert d["test_logprob_low"] <= d["test_logprob"] <= d["test_logprob_high"]
assert d["test_rows"] == 400
assert 1 <= d["ess"] <= 100 and d["base"] == "uniform" and d["seed"] == 1
'
}

@test "without TEST: log Z only" {
    ais-estimate bin.rbm --betas 500 --format json > z.json
    python3 -c '
import json
d = json.load(open("z.json"))
assert "logz" in d and "test_logprob" not in d and d["test_rows"] == 0
'
    run --separate-stderr ais-estimate bin.rbm --betas 500
    [ "$status" -eq 0 ]
    [[ "$output" == "log Z = "*" (AIS, 100 runs, 500 betas)" ]]
}

@test "bernoulli: AIS agrees with --exact (log Z and test log p)" {
    ais-estimate bin.rbm bin.tz --format json > ais.json
    ais-estimate bin.rbm bin.tz --exact --format json > exact.json
    python3 -c '
import json
a = json.load(open("ais.json")); e = json.load(open("exact.json"))
assert e["method"] == "exact" and e["logz_low"] == e["logz"] == e["logz_high"]
assert abs(a["logz"] - e["logz"]) < 0.1, (a["logz"], e["logz"])
assert a["logz_low"] <= e["logz"] <= a["logz_high"]
assert abs(a["test_logprob"] - e["test_logprob"]) < 0.1
'
}

@test "gaussian: AIS agrees with --exact" {
    ais-estimate gauss.rbm gauss.tz --betas 5000 --format json > ga.json
    ais-estimate gauss.rbm gauss.tz --exact --format json > ge.json
    python3 -c '
import json
a = json.load(open("ga.json")); e = json.load(open("ge.json"))
assert abs(a["logz"] - e["logz"]) < 0.1, (a["logz"], e["logz"])
assert abs(a["test_logprob"] - e["test_logprob"]) < 0.1
'
}

@test "replicated softmax: log Z per document length, perplexity" {
    ais-estimate words.rbm words.tz --betas 5000 --format json > wa.json
    ais-estimate words.rbm words.tz --exact --format json > we.json
    python3 -c '
import json, math
a = json.load(open("wa.json")); e = json.load(open("we.json"))
assert [x["length"] for x in a["lengths"]] == [3, 5]
assert [x["rows"] for x in a["lengths"]] == [200, 100]
for x, y in zip(a["lengths"], e["lengths"]):
    assert abs(x["logz"] - y["logz"]) < 0.1, (x, y)
assert abs(a["test_logprob"] - e["test_logprob"]) < 0.1
assert a["test_words"] == 200 * 3 + 100 * 5
pp = math.exp(-e["test_logprob"] * 300 / 1100)
assert abs(e["perplexity"] - pp) < 1e-9 * pp
assert 1 < pp < 10
'
    run --separate-stderr ais-estimate words.rbm words.tz --exact
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "log Z(D=3) = "* ]]
    [[ "${lines[1]}" == "log Z(D=5) = "* ]]
    [[ "${lines[3]}" == "perplexity = "*" over 1100 words" ]]
    run --separate-stderr ais-estimate words.rbm --length 4 --exact --format tsv
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == "exact	4	0	"* ]]
}

@test "tsv: a header and one row" {
    run --separate-stderr ais-estimate bin.rbm bin.tz --betas 300 --format tsv
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [ "${lines[0]}" = "method	length	rows	logz	logz_low	logz_high	runs	betas	test_logprob	test_logprob_low	test_logprob_high" ]
    [[ "${lines[1]}" == "ais		400	"*"	100	300	"* ]]
}

@test "the same seed gives the same output; another seed another" {
    ais-estimate bin.rbm bin.tz --betas 300 -s 5 --format json > s1.json
    ais-estimate bin.rbm bin.tz --betas 300 -s 5 --format json > s2.json
    ais-estimate bin.rbm bin.tz --betas 300 -s 6 --format json > s3.json
    cmp s1.json s2.json
    run ! cmp -s s1.json s3.json
}

@test "--base fits the visible biases to data; --betas FILE" {
    printf '# a short schedule\n0\n0.25\n\n0.5\n0.75\n0.9\n0.99\n1\n' > sched.txt
    run --separate-stderr ais-estimate bin.rbm --base bin.tz --betas sched.txt --format json
    [ "$status" -eq 0 ]
    echo "$output" > b.json
    [ "$(field b.json base)" = data ]
    [ "$(field b.json betas)" = 6 ]
}

@test "error: test stream of another width" {
    printf '1,0,1,0,1\n' | tensor import csv > w5.tz
    run --separate-stderr ais-estimate bin.rbm w5.tz
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: w5.tz: input has 5 columns, model expects 12" ]
    run --separate-stderr ais-estimate bin.rbm --base w5.tz
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: w5.tz: input has 5 columns, model expects 12" ]
}

@test "error: non-binary test data for bernoulli units" {
    printf '0,1,0,1,0,1,0,1,0,1,0,0.5\n' | tensor import csv > half.tz
    run --separate-stderr ais-estimate bin.rbm half.tz
    [ "$status" -eq 1 ]
    [[ "$stderr" == "ais-estimate: half.tz: row 1: "* ]]
}

@test "error: a data stream is not a model" {
    run --separate-stderr ais-estimate bin.tz
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: bin.tz: not a model: a tensor has no name" ]
}

@test "error: a model of another type" {
    tensor pca --help > /dev/null 2>&1 || skip "tensor pca not available"
    tensor import csv < gauss.csv | tensor pca -k 2 --save pca.tz > /dev/null
    run --separate-stderr ais-estimate pca.tz
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: pca.tz: not a model this tool reads: model.type is 'pca' (known: rbm, dbn, dbm, mdbn)" ]
}

@test "error: malformed beta files name the line" {
    printf '0\n0.5\nx\n1\n' > b1.txt
    run --separate-stderr ais-estimate bin.rbm --betas b1.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: b1.txt:3: not a number: 'x'" ]
    printf '0\n0.5\n0.4\n1\n' > b2.txt
    run --separate-stderr ais-estimate bin.rbm --betas b2.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: b2.txt:3: betas must increase (0.4 after 0.5)" ]
    printf '0\n0.5\n0.9\n' > b3.txt
    run --separate-stderr ais-estimate bin.rbm --betas b3.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: b3.txt:3: the last beta must be 1" ]
    printf '0.1\n1\n' > b4.txt
    run --separate-stderr ais-estimate bin.rbm --betas b4.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: b4.txt:1: the first beta must be 0" ]
    printf '0\n1.5\n' > b5.txt
    run --separate-stderr ais-estimate bin.rbm --betas b5.txt
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: b5.txt:2: beta 1.5 is outside [0, 1]" ]
}

@test "error: --exact with both layers over 30 units" {
    python3 -c '
import random
random.seed(4)
for i in range(50): print(",".join(str(random.randrange(2)) for j in range(40)))
' | tensor import csv | tensor binarize > w40.tz
    rbm-train -q -o big.rbm -H 40 -e 1 w40.tz
    run --separate-stderr ais-estimate big.rbm --exact
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: exact log Z: both layers have more than 30 units (V=40, H=40); use AIS" ]
}

@test "usage errors exit 2" {
    run --separate-stderr ais-estimate
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: missing MODEL" ]
    [ "${stderr_lines[1]}" = "Try 'ais-estimate --help' for more information." ]
    run --separate-stderr ais-estimate bin.rbm --bogus
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: unknown option '--bogus'" ]
    run --separate-stderr ais-estimate bin.rbm --runs
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: option '--runs' needs an argument" ]
    run --separate-stderr ais-estimate bin.rbm --format xml
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: invalid format 'xml': use text, tsv or json" ]
    run --separate-stderr ais-estimate bin.rbm --runs 1
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: invalid run count '1': must be in [2, 1000000]" ]
    run --separate-stderr ais-estimate bin.rbm --betas 2
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: invalid beta count '2': must be in [3, 100000000]" ]
    run --separate-stderr ais-estimate words.rbm
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: a replicated softmax model needs TEST or --length (log Z depends on the document length)" ]
    run --separate-stderr ais-estimate bin.rbm --length 3
    [ "$status" -eq 2 ]
    [ "${stderr_lines[0]}" = "ais-estimate: --length applies to replicated softmax models only" ]
}

@test "stdout write errors are reported" {
    [ -w /dev/full ] || skip "no /dev/full"
    run --separate-stderr sh -c 'ais-estimate bin.rbm --exact > /dev/full'
    [ "$status" -eq 1 ]
    [ "$stderr" = "ais-estimate: write error: No space left on device" ]
}

@test "man page examples at a small size" {
    # EXAMPLES of ais-estimate(1), with 12 units instead of 784, fewer betas
    run --separate-stderr ais-estimate bin.rbm bin.tz --betas 1000
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == "test log p(v) = "*" nats over 400 rows" ]]
    run --separate-stderr ais-estimate bin.rbm bin.tz --betas 2000 --base bin.tz -j 2
    [ "$status" -eq 0 ]
    run --separate-stderr ais-estimate bin.rbm --exact
    [ "$status" -eq 0 ]
    [[ "$output" == "log Z = "*" (exact, 256 hidden states)" ]]
    for n in 500 1000; do
        ais-estimate bin.rbm --betas $n --format tsv | tail -n 1 | cut -f 4
    done > doubling.txt
    [ "$(wc -l < doubling.txt)" -eq 2 ]
    run --separate-stderr ais-estimate words.rbm words.tz --betas 1000
    [ "$status" -eq 0 ]
    [[ "${lines[3]}" == "perplexity = "* ]]
}

@test "MNIST: quick AIS on a small trained RBM (the long check is make bench)" {
    d=../shared/data/mnist
    [ -f "$BATS_TEST_DIRNAME/../$d/t10k-images-idx3-ubyte.gz" ] || skip "MNIST not found in $d"
    zcat "$BATS_TEST_DIRNAME/../$d/t10k-images-idx3-ubyte.gz" | tensor import idx |
        tensor head -n 500 | tensor binarize > mn.tz
    rbm-train -q -o mn.rbm -H 20 -e 2 -s 1 mn.tz
    ais-estimate mn.rbm mn.tz --betas 1000 --runs 20 --base mn.tz --format json > mn.json
    python3 -c '
import json
d = json.load(open("mn.json"))
assert -400 < d["test_logprob"] < -60, d
'
}
