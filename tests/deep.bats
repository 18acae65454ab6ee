#!/usr/bin/env bats
# deep.bats - deep models (DBN, DBM) in encode, rbm-sample and ais-estimate:
# the layers encode gives (a DBN's up-pass is its RBMs' p(h|v); a DBM's
# mean-field posteriors), sampling (shape, values, seeds, clamped visible
# units), and ais-estimate's output formats, its errors, and on tiny
# 8-5-4 models: AIS against exact enumeration, and the lower bounds against
# the exact test log-likelihood computed with numpy.  Data and RBMs come
# from helpers/deep.bash.

bats_require_minimum_version 1.5.0

load helpers/deep

# the composed models of the shared RBMs: dbn.dbn (l1, l2), dbm.dbm (b1, b2
# and 2 joint epochs)
models() {
    [ -e dbn.dbn ] || stack -o dbn.dbn l1.rbm l2.rbm
    [ -e dbm.dbm ] || stack --dbm -q -j 1 -e 2 -o dbm.dbm b1.rbm b2.rbm d500.tz
}

@test "encode of a DBN: the up-pass of each layer is its RBM's p(h|v)" {
    models
    encode -j 1 -L h1 dbn.dbn d500.tz > h1.tz
    tensor info h1.tz | grep -Eq '^shape: +\[50\] per record$'
    tensor info h1.tz | grep -Eq '^records: +500$'
    [ "$(attr h1.tz encode.mode)" = '"up-mean"' ]
    tensor export csv h1.tz > h1.csv
    csv_range h1.csv
    # the streams differ in encode.model and encode.model_hash only: the
    # values are the same bytes
    encode -j 1 l1.rbm d500.tz | tensor export csv | cmp h1.csv -
    encode -j 1 -L 1 dbn.dbn d500.tz | tensor export csv | cmp h1.csv -
    encode -j 1 -L h2 dbn.dbn d500.tz > h2.tz
    tensor info h2.tz | grep -Eq '^shape: +\[30\] per record$'
    tensor export csv h2.tz > h2.csv
    csv_range h2.csv
    encode -j 1 l1.rbm d500.tz | encode -j 1 l2.rbm | tensor export csv | cmp h2.csv -
    # the default layer is the top one
    encode -j 1 dbn.dbn d500.tz | tensor export csv | cmp h2.csv -
}

@test "encode of a DBM: mean-field posteriors in [0, 1], the same bytes twice" {
    models
    encode -j 1 -L h1 dbm.dbm d500.tz > m1.tz
    encode -j 1 -L h1 dbm.dbm d500.tz > m1b.tz
    cmp m1.tz m1b.tz
    tensor info m1.tz | grep -Eq '^shape: +\[50\] per record$'
    tensor export csv m1.tz > m1.csv
    csv_range m1.csv
    encode -j 1 dbm.dbm d500.tz > top.tz
    tensor info top.tz | grep -Eq '^shape: +\[30\] per record$'
    encode -j 1 -L h2 dbm.dbm d500.tz | cmp top.tz -
    tensor export csv top.tz > top.csv
    csv_range top.csv
    # the rows are split over threads, not changed by them
    encode -j 2 dbm.dbm d500.tz | cmp top.tz -
    # unlike a DBN, h1's posterior also hears h2: it is not b1's p(h|v)
    ! encode -j 1 b1.rbm d500.tz | tensor export csv | cmp -s m1.csv - || false
    # one mean-field sweep is not the fixed point; --mf-tol 0 runs all
    # --mf-iters sweeps and lands within 1e-5 of the default stopping rule
    ! encode -j 1 --mf-iters 1 dbm.dbm d500.tz | tensor export csv | cmp -s top.csv - || false
    encode -j 1 --mf-tol 0 --mf-iters 100 dbm.dbm d500.tz | tensor export csv > full.csv
    "$PY" -c '
import numpy as np
a, b = np.loadtxt("top.csv", delimiter=","), np.loadtxt("full.csv", delimiter=",")
assert np.abs(a - b).max() < 1e-5, np.abs(a - b).max()'
}

@test "encode: layer errors and --down on deep models" {
    models
    run -2 --separate-stderr encode -L x dbn.dbn d500.tz
    [ "${stderr_lines[0]}" = "encode: --layer x: the model has no such layer (its layers: v, h1, h2)" ]
    [ "${stderr_lines[1]}" = "Try 'encode --help' for more information." ]
    [ -z "$output" ]
    run -2 --separate-stderr encode --layer x dbm.dbm d500.tz
    [ "${stderr_lines[0]}" = "encode: --layer x: the model has no such layer (its layers: v, h1, h2)" ]
    run -2 --separate-stderr encode -L 3 dbm.dbm d500.tz
    [ "${stderr_lines[0]}" = "encode: --layer 3: the model has no such layer (its layers: v, h1, h2)" ]
    run -2 --separate-stderr encode -L v dbm.dbm d500.tz
    [ "${stderr_lines[0]}" = "encode: --layer v is the visible layer, the input" ]
    run -2 --separate-stderr encode --down dbm.dbm d500.tz
    [ "${stderr_lines[0]}" = "encode: --down applies to RBMs (a dbm generates with rbm-sample)" ]
    run -2 --separate-stderr encode --down dbn.dbn d500.tz
    [ "${stderr_lines[0]}" = "encode: --down applies to RBMs (a dbn generates with rbm-sample)" ]
    run -2 --separate-stderr encode -L h1 l1.rbm d500.tz
    [ "${stderr_lines[0]}" = "encode: --layer h1: an RBM's codes are its hidden layer 'h' (use --down for the visible layer)" ]
    "$T" rand 5 16 1 > r16.tz
    run -1 --separate-stderr encode dbm.dbm r16.tz
    [ "$stderr" = "encode: input has 16 columns, model expects 784" ]
}

@test "rbm-sample of a DBN and a DBM: chains x 784, 0/1 samples or [0,1] means, seeded" {
    models
    for m in dbn.dbn dbm.dbm; do
        rbm-sample -j 1 -n 7 --steps 50 -s 3 $m > s.tz
        tensor info s.tz | grep -Eq '^shape: +\[784\] per record$'
        tensor info s.tz | grep -Eq '^records: +7$'
        [ "$(tensor export csv s.tz | tr ',' '\n' | sort -u | tr '\n' ' ')" = "0 1 " ]
        rbm-sample -j 1 -n 7 --steps 50 -s 3 $m | cmp s.tz -
        ! rbm-sample -j 1 -n 7 --steps 50 -s 4 $m | cmp -s s.tz - || false
        rbm-sample -j 1 --means -n 7 --steps 50 -s 3 $m > mean.tz
        tensor info mean.tz | grep -Eq '^records: +7$'
        [ "$(attr mean.tz sample.output)" = '"means"' ]
        tensor export csv mean.tz > mean.csv
        csv_range mean.csv
        # means, not states: more than two distinct values
        [ "$(tr ',' '\n' < mean.csv | sort -u | wc -l)" -gt 2 ]
        rbm-sample -j 1 --means -n 7 --steps 50 -s 3 $m | cmp mean.tz -
    done
}

@test "rbm-sample --clamp 0:392 of a DBN and a DBM keeps the top half of each digit" {
    models
    tensor head -n 5 d500.tz > in5.tz
    tensor export csv in5.tz > in5.csv
    for m in dbn.dbn dbm.dbm; do
        for means in "" --means; do
            rbm-sample -j 1 $means --clamp 0:392 --steps 30 -s 2 $m in5.tz > c.tz
            tensor export csv c.tz > c.csv
            "$PY" - "$means" <<'EOF'
import sys, numpy as np
c = np.loadtxt("c.csv", delimiter=",")
x = np.loadtxt("in5.csv", delimiter=",")
assert c.shape == (5, 784), c.shape
assert (c[:, :392] == x[:, :392]).all(), "clamped columns changed"
assert not (c[:, 392:] == x[:, 392:]).all(), "free columns never moved"
assert (c >= 0).all() and (c <= 1).all()
if not sys.argv[1]:
    assert set(np.unique(c)) <= {0.0, 1.0}
EOF
        done
    done
}

@test "ais-estimate of a DBM and a DBN: text, tsv and json" {
    models
    tensor head -n 100 d500.tz > t100.tz
    a="-q -j 1 --runs 20 --betas 500"
    run --separate-stderr ais-estimate $a dbm.dbm t100.tz
    [ "$status" -eq 0 ]
    echo "$output"
    [ "${#lines[@]}" -eq 2 ]
    # the figures: 4 decimals; an interval end may be infinite
    n='-?[0-9]+\.[0-9]{4}'
    ais='\(AIS, 20 runs, 500 betas\)'
    z="= $n \\[(-inf|$n), $n\\] $ais\$"
    b="^test log p\\(v\\) >= $n \\[$n, ($n|inf)\\] nats over 100 rows"
    re="^log Z $z"
    [[ "${lines[0]}" =~ $re ]]
    re="$b \\(mean-field bound\\)\$"
    [[ "${lines[1]}" =~ $re ]]
    run --separate-stderr ais-estimate $a dbn.dbn t100.tz
    echo "$output"
    [ "${#lines[@]}" -eq 2 ]
    re="^log Z \\(top RBM\\) $z"
    [[ "${lines[0]}" =~ $re ]]
    re="$b \\(variational bound\\)\$"
    [[ "${lines[1]}" =~ $re ]]
    for m in dbm dbn; do
        ais-estimate $a --format tsv $m.$m t100.tz > $m.tsv
        ais-estimate $a --format json $m.$m t100.tz > $m.json
        ais-estimate $a $m.$m t100.tz > $m.txt
        "$PY" - $m <<'EOF'
import sys, json, math
m = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(m + ".tsv")]
assert len(rows) == 2 and len(rows[0]) == len(rows[1]) == 11, rows
t = dict(zip(rows[0], rows[1]))
assert t["method"] == "ais" and t["model"] == m and t["runs"] == "20"
assert t["betas"] == "500" and t["rows"] == "100"
j = json.load(open(m + ".json"))
assert j["method"] == "ais" and j["model"] == m and j["test_rows"] == 100
assert j["bound"] == {"dbm": "mean-field", "dbn": "variational"}[m]
for k in ("logz", "test_logprob_bound"):
    assert math.isfinite(j[k]) and abs(j[k] - float(t[k])) < 1e-9, k
# the text rounds the same figures to 4 decimals
txt = open(m + ".txt").read().split()
assert abs(float(txt[txt.index("=") + 1]) - j["logz"]) < 1e-4
assert abs(float(txt[txt.index(">=") + 1]) - j["test_logprob_bound"]) < 1e-4
# a bound on log p(v) of binary 784-pixel digits: below 0, above uniform
assert -784 * math.log(2) < j["test_logprob_bound"] < 0, j
EOF
    done
}

@test "ais-estimate: a DBN whose top RBM was pretrained for a DBM, --exact of a large DBM" {
    stack --force -o doubled.dbn b1.rbm b2.rbm
    run -1 --separate-stderr ais-estimate -q doubled.dbn d500.tz
    [ "$stderr" = "ais-estimate: doubled.dbn: cannot estimate the top RBM: up_scale and down_scale differ (a DBM pretraining layer has no RBM energy of its own)" ]
    [ -z "$output" ]
    models
    run -1 --separate-stderr ais-estimate -q --exact dbm.dbm
    [ "$stderr" = "ais-estimate: exact log Z: too many states to enumerate; use AIS" ]
}

@test "tiny DBN and DBM: AIS (20000 betas) agrees with --exact, the bounds lie below exact log p(v)" {
    stack -o tiny.dbn t1.rbm t2.rbm
    stack --dbm -q -j 1 -e 20 -b 20 -l 0.01 -o tiny.dbm u1.rbm u2.rbm tiny.tz
    for m in tiny.dbn tiny.dbm; do
        ais-estimate -q -j 1 --exact --format json $m tiny.tz > $m.exact.json
        ais-estimate -q -j 1 --betas 20000 --format json $m tiny.tz > $m.ais.json
        cat $m.exact.json $m.ais.json
    done
    # the parameters, for an exact numpy reference
    for n in v.bias h1.bias h2.bias W1 W2; do
        tensor export csv --name $n tiny.dbm > dbm_$n.csv
    done
    for n in W1 vbias1 hbias1 W2 vbias2 hbias2; do
        tensor export csv --name $n tiny.dbn > dbn_$n.csv
    done
    tensor export csv tiny.tz > tiny_rows.csv
    # measured: DBN log Z 8.2308 exact, 8.2284 AIS, bound -3.389 against
    # exact mean log p(v) -3.342; DBM log Z 19.3402 / 19.3429, mean-field
    # bound -3.185 against -3.161 (the data's own entropy is about 2.7 nats)
    run "$PY" - <<'EOF'
import json, itertools, numpy as np
def ld(f): return np.loadtxt(f, delimiter=",", ndmin=1)
def lse(a, axis=None):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)
sp = lambda x: np.logaddexp(0, x)
H1 = np.array(list(itertools.product([0, 1], repeat=5)), float)
X = np.loadtxt("tiny_rows.csv", delimiter=",")
# DBM, E = -(v'W1 h1 + h1'W2 h2 + a'v + b1'h1 + b2'h2): v and h2 summed out
W1, W2 = ld("dbm_W1.csv").reshape(8, 5), ld("dbm_W2.csv").reshape(5, 4)
a, b1, b2 = ld("dbm_v.bias.csv"), ld("dbm_h1.bias.csv"), ld("dbm_h2.bias.csv")
top = sp(H1 @ W2 + b2).sum(1)
dbm_z = lse(H1 @ b1 + sp(H1 @ W1.T + a).sum(1) + top)
dbm_lp = (lse(X @ a[:, None] + X @ W1 @ H1.T + (H1 @ b1 + top)[None], axis=1) - dbm_z).mean()
# DBN: p(h1) the top RBM's marginal, p(v|h1) the bottom RBM's logistic
W1, W2 = ld("dbn_W1.csv").reshape(8, 5), ld("dbn_W2.csv").reshape(5, 4)
a1, a2, c2 = ld("dbn_vbias1.csv"), ld("dbn_vbias2.csv"), ld("dbn_hbias2.csv")
lp_h1 = H1 @ a2 + sp(H1 @ W2 + c2).sum(1)
dbn_z = lse(lp_h1)
act = H1 @ W1.T + a1
dbn_lp = lse(X @ act.T - sp(act).sum(1)[None] + (lp_h1 - dbn_z)[None], axis=1).mean()
ref = {"tiny.dbm": (dbm_z, dbm_lp), "tiny.dbn": (dbn_z, dbn_lp)}
for m, (z, lp) in ref.items():
    ex = json.load(open(m + ".exact.json"))
    ais = json.load(open(m + ".ais.json"))
    print("%s: log Z numpy %.4f exact %.4f AIS %.4f; log p(v) %.4f, bound %.4f"
          % (m, z, ex["logz"], ais["logz"], lp, ex["test_logprob_bound"]))
    assert ex["method"] == "exact" and ais["method"] == "ais"
    assert abs(ex["logz"] - z) < 1e-3, (m, ex["logz"], z)
    assert abs(ais["logz"] - ex["logz"]) < 0.1, (m, ais["logz"], ex["logz"])
    # a bound: below 0 and below the exact value (the DBN's is a sampled
    # estimate of its bound: 10 samples x 600 rows, allow 0.01 of noise)
    b = ex["test_logprob_bound"]
    assert b < 0 and b <= lp + (0.01 if m == "tiny.dbn" else 1e-4), (m, b, lp)
    # and not a vacuous one: above a uniform model's -8 log 2 = -5.55
    assert b > -8 * np.log(2), (m, b)
    assert abs(ais["test_logprob_bound"] - b) < 0.1
EOF
    echo "$output"
    [ "$status" -eq 0 ]
}
