#!/usr/bin/env bats
# encode.bats - tests for encode(1): conditionals against numpy for every unit
# type, sampling frequencies, errors, provenance, constant memory.

bats_require_minimum_version 1.5.0

load helpers/common

# repeat N FILE: FILE's lines N times over
repeat() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[2]).read() * int(sys.argv[1]))' "$@"; }

# random rows of the given unit type as text: rand_rows VIS V N SEED [K]
rand_rows() {
    "$PY" - "$@" <<'PEOF'
import sys, numpy as np
vis, V, N, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = np.random.default_rng(seed)
if vis == 'bernoulli':
    x = r.integers(0, 2, (N, V))
elif vis == 'gaussian':
    x = r.normal(0, 1.5, (N, V))
elif vis == 'softmax':
    K = int(sys.argv[5])
    x = np.zeros((N, V))
    for n in range(N):
        for g in range(0, V, K):
            x[n, g + r.integers(K)] = 1
else:
    x = r.poisson(1.5, (N, V))
np.savetxt(sys.stdout, x, fmt='%.9g')
PEOF
}

# check_up VIS HID [K]: encode's E[h|v] against numpy on 50 random rows
check_up() {
    local vis=$1 hid=$2 K=${3:-1} V=6
    [ "$vis" = softmax ] && V=$((2 * K))
    make_model m "$vis" "$hid" $V 5 1.0 11 $K
    rand_rows "$vis" $V 50 3 $K > v.txt
    rows_of $V f32 < v.txt > v.tz
    run encode m.rbm v.tz
    [ "$status" -eq 0 ]
    encode m.rbm v.tz | dump > h.txt
    "$PY" - "$vis" "$hid" <<'PEOF'
import sys, ref
vis, hid = sys.argv[1:]
P = ref.params('m.txt')
ref.close(ref.rows('h.txt'), ref.up(vis, hid, P, ref.rows('v.txt')), 'up')
PEOF
}

# check_down VIS HID [K [D]]: encode --down's E[v|h] against numpy
check_down() {
    local vis=$1 hid=$2 K=${3:-1} D=${4:-} V=6
    [ "$vis" = softmax ] && V=$((2 * K))
    make_model m "$vis" "$hid" $V 5 1.0 12 $K
    rand_rows bernoulli 5 40 4 > h.txt
    "$PY" -c 'import numpy as np; np.savetxt("hp.txt", np.random.default_rng(5).random((10, 5)))'
    cat hp.txt >> h.txt             # probabilities as well as 0/1 states
    rows_of 5 f32 < h.txt > h.tz
    encode --down ${D:+--length $D} m.rbm h.tz | dump > v.txt
    "$PY" - "$vis" "${D:-1}" <<'PEOF'
import sys, ref
vis, D = sys.argv[1], float(sys.argv[2])
P = ref.params('m.txt')
ref.close(ref.rows('v.txt'), ref.down(vis, P, ref.rows('h.txt'), D), 'down')
PEOF
}

@test "encode --help and --version" {
    run encode --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "Usage: encode [OPTION]... MODEL [INPUT]" ]]
    [[ "$output" == *"(default: 1024)"* ]]
    run encode --version
    [ "$status" -eq 0 ]
    [[ "$output" == "encode (rbmkit) "* ]]
}

@test "encode usage errors" {
    run -2 --separate-stderr encode
    [ "$stderr" = "encode: missing MODEL
Try 'encode --help' for more information." ]
    run -2 --separate-stderr encode -b 0 m.rbm
    [ "${stderr_lines[0]}" = "encode: invalid batch size '0': must be in [1, 1048576]" ]
    run -2 --separate-stderr encode a b c
    [ "${stderr_lines[0]}" = "encode: too many operands" ]
    make_model m bernoulli bernoulli 6 5 1.0 1
    run -2 --separate-stderr encode --length 3 m.rbm /dev/null
    [ "${stderr_lines[0]}" = "encode: --length applies only with --down to a model with replicated-softmax visible units" ]
}

@test "encode: bernoulli/bernoulli E[h|v] matches numpy" { check_up bernoulli bernoulli; }
@test "encode: gaussian visible (sigma != 1) E[h|v] matches numpy" { check_up gaussian bernoulli; }
@test "encode: softmax visible (groups of 3) E[h|v] matches numpy" { check_up softmax bernoulli 3; }
@test "encode: replicated-softmax E[h|v] (bias scaled by D) matches numpy" { check_up replicated-softmax bernoulli; }
@test "encode: gaussian hidden E[h|v] matches numpy" { check_up bernoulli gaussian; }

@test "encode --down: bernoulli reconstructions match numpy" { check_down bernoulli bernoulli; }
@test "encode --down: gaussian reconstructions match numpy" { check_down gaussian bernoulli; }
@test "encode --down: softmax reconstructions match numpy" { check_down softmax bernoulli 3; }
@test "encode --down: replicated softmax, default length 1 = word distribution" { check_down replicated-softmax bernoulli; }
@test "encode --down --length 7: replicated softmax means are 7 p(word|h)" { check_down replicated-softmax bernoulli 1 7; }

@test "encode: batch size does not change the means" {
    make_model m gaussian bernoulli 6 5 1.0 2
    rand_rows gaussian 6 1000 9 | rows_of 6 f32 > v.tz
    encode -b 1 m.rbm v.tz | dump > a.txt
    encode -b 300 m.rbm v.tz | dump > b.txt
    encode m.rbm < v.tz | dump > c.txt
    "$PY" -c '
import ref
a, b, c = (ref.rows(f) for f in ("a.txt", "b.txt", "c.txt"))
assert a.shape == (1000, 5)
ref.close(a, b, "b1 vs b300", 1e-6, 0); ref.close(a, c, "b1 vs b256", 1e-6, 0)'
}

@test "encode --sample: bernoulli hidden samples are 0/1 with frequencies p(h|v)" {
    # N = 4000 copies of 3 rows; each unit's frequency must be within
    # 5 binomial standard errors of the exact probability (a false alarm
    # has chance < 1e-5 over all 15 units).
    make_model m bernoulli bernoulli 6 5 1.0 21
    printf '1 0 1 1 0 0\n0 1 0 0 1 1\n1 1 1 1 1 1\n' > v3.txt
    repeat 4000 v3.txt | rows_of 6 u8 > v.tz
    encode --sample -s 5 m.rbm v.tz | dump > h.txt
    "$PY" - <<'PEOF'
import numpy as np, ref
P = ref.params('m.txt')
v3 = ref.rows('v3.txt'); h = ref.rows('h.txt')
assert h.shape == (12000, 5)
assert set(np.unique(h)) <= {0.0, 1.0}
p = ref.up('bernoulli', 'bernoulli', P, v3)
f = h.reshape(4000, 3, 5).mean(0)
se = np.sqrt(p * (1 - p) / 4000)
assert np.all(np.abs(f - p) <= 5 * se + 1e-9), (f, p)
PEOF
}

@test "encode --sample: gaussian hidden samples are mean + N(0,1)" {
    make_model m bernoulli gaussian 6 4 1.0 22
    printf '1 0 1 1 0 0\n' > v1.txt
    repeat 5000 v1.txt | rows_of 6 u8 > v.tz
    encode --sample m.rbm v.tz | dump > h.txt
    "$PY" - <<'PEOF'
import numpy as np, ref
P = ref.params('m.txt')
mu = ref.up('bernoulli', 'gaussian', P, ref.rows('v1.txt'))[0]
h = ref.rows('h.txt'); n = len(h)
assert np.all(np.abs(h.mean(0) - mu) <= 5 / np.sqrt(n)), (h.mean(0), mu)
assert np.all(np.abs(h.var(0) - 1) <= 5 * np.sqrt(2 / n)), h.var(0)
PEOF
}

@test "encode --down --sample: softmax one-hot groups and replicated-softmax word counts" {
    make_model m softmax bernoulli 6 5 1.0 23 3
    printf '1 0 1 0 1\n' > h1.txt
    repeat 5000 h1.txt | rows_of 5 f32 > h.tz
    encode --down --sample m.rbm h.tz | dump > v.txt
    "$PY" - <<'PEOF'
import numpy as np, ref
P = ref.params('m.txt')
p = ref.down('softmax', P, ref.rows('h1.txt'))[0]
v = ref.rows('v.txt'); n = len(v)
assert set(np.unique(v)) <= {0.0, 1.0}
assert np.all(v.reshape(n, 2, 3).sum(2) == 1)
assert np.all(np.abs(v.mean(0) - p) <= 5 * np.sqrt(p * (1 - p) / n)), (v.mean(0), p)
PEOF
    make_model r replicated-softmax bernoulli 6 5 1.0 24
    encode --down --sample --length 7 r.rbm h.tz | dump > w.txt
    "$PY" - <<'PEOF'
import numpy as np, ref
P = ref.params('r.txt')
p = ref.down('replicated-softmax', P, ref.rows('h1.txt'))[0]
w = ref.rows('w.txt'); n = len(w)
assert np.all(w.sum(1) == 7) and np.all(w == np.round(w)) and w.min() >= 0
# each count is binomial(7, p_k)
assert np.all(np.abs(w.mean(0) - 7 * p) <= 5 * np.sqrt(7 * p * (1 - p) / n)), (w.mean(0), 7 * p)
PEOF
}

@test "encode --sample is deterministic for a seed and changes with it" {
    make_model m bernoulli bernoulli 6 5 1.0 25
    rand_rows bernoulli 6 500 1 | rows_of 6 u8 > v.tz
    encode --sample -s 3 m.rbm v.tz > a.tz
    encode --sample --seed 3 m.rbm v.tz > b.tz
    encode --sample -s 4 m.rbm v.tz > c.tz
    cmp a.tz b.tz
    run ! cmp -s a.tz c.tz
}

@test "encode: input width must match the model" {
    make_model m bernoulli bernoulli 6 4 1.0 1
    printf '1 0 1 0 1\n' | rows_of 5 u8 > v5.tz
    run -1 --separate-stderr encode m.rbm v5.tz
    [ "$stderr" = "encode: input has 5 columns, model expects 6" ]
    [ -z "$output" ]
    printf '1 0 1 0 1 1\n' | rows_of 6 u8 > v6.tz
    run -1 --separate-stderr encode --down m.rbm v6.tz
    [ "$stderr" = "encode: input has 6 columns, model expects 4 (hidden units)" ]
}

@test "encode: non-binary rows for bernoulli units are an error unless --allow-real" {
    make_model m bernoulli bernoulli 6 4 1.0 1
    printf '1 0 1 0 1 0\n0.5 0 1 0 1 0\n' > v.txt
    rows_of 6 f32 < v.txt > v.tz
    run -1 --separate-stderr encode m.rbm v.tz
    [ "$stderr" = "encode: input row 2: non-binary value for bernoulli units (--allow-real accepts values in [0, 1])" ]
    encode --allow-real m.rbm v.tz | dump > h.txt
    "$PY" -c '
import ref
ref.close(ref.rows("h.txt"), ref.up("bernoulli", "bernoulli", ref.params("m.txt"), ref.rows("v.txt")), "allow-real")'
}

@test "encode: NaN, infinities and bad counts are errors" {
    make_model g gaussian bernoulli 6 4 1.0 1
    printf '0 0 0 0 0 0\n0 0 nan 0 0 0\n' | rows_of 6 f32 > nan.tz
    run -1 --separate-stderr encode g.rbm nan.tz
    [ "$stderr" = "encode: input row 2: NaN or infinite value" ]
    printf '0 0 0 0 inf\n' | rows_of 5 f32 > inf.tz
    make_model b bernoulli bernoulli 6 5 1.0 1
    run -1 --separate-stderr encode --down b.rbm inf.tz
    [ "$stderr" = "encode: input row 1: NaN or infinite value" ]
    make_model r replicated-softmax bernoulli 6 4 1.0 1
    printf '1 2 0 0 -1 0\n' | rows_of 6 f32 > neg.tz
    run -1 --separate-stderr encode r.rbm neg.tz
    [ "$stderr" = "encode: input row 1: negative count for replicated-softmax units" ]
    make_model s softmax bernoulli 6 4 1.0 1 3
    printf '1 0 0 1 1 0\n' | rows_of 6 f32 > two.tz
    run -1 --separate-stderr encode s.rbm two.tz
    [ "$stderr" = "encode: input row 1: softmax group is not one-hot" ]
}

@test "encode: bad models and inputs" {
    make_model d bernoulli bernoulli 6 4 1.0 1 1 mdae
    printf '1 0 1 0 1 0\n' | rows_of 6 u8 > v.tz
    run -1 --separate-stderr encode d.rbm v.tz
    [ "$stderr" = "encode: d.rbm: not a model this tool reads: model.type is 'mdae' (known: rbm, dbn, dbm, mdbn)" ]
    make_model d bernoulli bernoulli 6 4 1.0 1 1 dbn
    run -1 --separate-stderr encode d.rbm v.tz
    [ "$stderr" = "encode: d.rbm: corrupt dbn model: dbn.levels must be 2 to 15" ]
    run -1 --separate-stderr encode nope.rbm v.tz
    [ "$stderr" = "encode: nope.rbm: No such file or directory" ]
    echo junk > junk.rbm
    run -1 --separate-stderr encode junk.rbm v.tz
    [ "$stderr" = "encode: junk.rbm: not a tensor stream (bad magic at byte 0)" ]
    make_model m bernoulli bernoulli 6 4 1.0 1
    run -1 --separate-stderr encode m.rbm < /dev/null
    [ "$stderr" = "encode: empty input (no tensor stream)" ]
    head -c -20 v.tz > trunc.tz
    run -1 --separate-stderr encode m.rbm trunc.tz
    [[ "$stderr" == "encode: trunc.tz: "* ]]
    run -1 --separate-stderr sh -c 'encode m.rbm v.tz > /dev/full'
    [ "$stderr" = "encode: write error: No space left on device" ]
}

@test "encode: output keeps modality.name and records its provenance" {
    make_model m bernoulli bernoulli 6 4 1.0 1
    make_model m2 bernoulli bernoulli 6 4 1.0 2
    printf '1 0 1 0 1 0\n' | rows_of 6 u8 modality.name=image > v.tz
    encode m.rbm v.tz > h.tz
    [ "$(dump modality.name < h.tz)" = image ]
    [ "$(dump encode.model < h.tz)" = m.rbm ]
    [ "$(dump encode.mode < h.tz)" = up-mean ]
    [ "$(encode --down --sample m.rbm h.tz | dump encode.mode)" = down-sample ]
    cp m.rbm copy.rbm
    [ "$(dump encode.model_hash < h.tz)" = "$(encode copy.rbm v.tz | dump encode.model_hash)" ]
    [ "$(dump encode.model_hash < h.tz)" != "$(encode m2.rbm v.tz | dump encode.model_hash)" ]
}

@test "encode streams in constant memory (max RSS, 1e5 vs 1e4 rows)" {
    [ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
    make_model m bernoulli bernoulli 784 64 0.1 1
    "$T" rand 10000 784 1 > small.tz
    "$T" rand 100000 784 2 > big.tz
    /usr/bin/time -f %M -o small.rss encode -j 1 m.rbm small.tz > /dev/null
    /usr/bin/time -f %M -o big.rss encode -j 1 m.rbm big.tz > /dev/null
    small=$(tail -n 1 small.rss) big=$(tail -n 1 big.rss)
    echo "# max RSS: 1e4 rows ${small} KiB, 1e5 rows ${big} KiB" >&3
    # 1e5 rows are 78 MB of input and 25 MB of output (1e4 rows: a tenth,
    # still many chunks); allow 2 MiB of noise
    [ $((big - small)) -lt 2048 ]
}

@test "encode: the examples of encode(1)" {
    command -v rbm-train > /dev/null || skip "rbm-train is not built"
    "$T" rand 300 64 7 > digits.tz
    rbm-train -o l1.rbm -H 64 -e 2 digits.tz
    encode l1.rbm digits.tz > codes.tz
    encode --down l1.rbm codes.tz > recon.tz
    encode --sample -s 7 l1.rbm digits.tz > h.tz
    encode l1.rbm digits.tz | rbm-train --allow-real -o l2.rbm -H 32 -e 2
    [ "$(dump < codes.tz | wc -l)" -eq 300 ]
    [ "$(dump < codes.tz | head -n 1 | wc -w)" -eq 64 ]
    [ "$(dump < recon.tz | head -n 1 | wc -w)" -eq 64 ]
    [ "$(dump < h.tz | tr ' ' '\n' | sort -u | tr '\n' ' ')" = "0 1 " ]
    [ -s l2.rbm ]
}
