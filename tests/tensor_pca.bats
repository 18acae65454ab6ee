#!/usr/bin/env bats
# tensor_pca.bats - `tensor pca` and `tensor whiten` against numpy: the
# covariance eigenvalues, the projections, identity covariance after
# whitening, ZCA as numpy's U' S U, save/re-apply byte identity, stdin vs
# file identity, and the errors (exact messages and exit codes).

bats_require_minimum_version 1.5.0

PY=/usr/bin/python3

setup() {
    T=$(mktemp -d)
    # x.csv: 400 records of width 6 with correlated columns and an offset;
    # written at f32 precision so numpy sees exactly what the tool reads
    $PY - "$T" <<'EOF'
import sys, numpy as np
t = sys.argv[1]
g = np.random.default_rng(7)
a = g.normal(size=(6, 6)) * np.array([3, 2, 1, .5, .3, .1])[:, None]
x = (g.normal(size=(400, 6)) @ a + np.arange(6) * 10).astype(np.float32)
np.savetxt(t + "/x.csv", x, delimiter=",", fmt="%.9g")
EOF
    tensor import csv "$T/x.csv" > "$T/x.tz"
}

teardown() {
    rm -rf "$T"
}

# numpy check: $1 = python code with X (n, D) float64 loaded from x.csv and
# load(path) reading a CSV exported by the tool.
npcheck() {
    $PY - "$T" "$1" <<'EOF'
import sys, numpy as np
t, code = sys.argv[1], sys.argv[2]
def load(p):
    return np.loadtxt(t + "/" + p, delimiter=",", ndmin=2)
X = load("x.csv").astype(np.float32).astype(float)   # the exact f32 values
def pca_np(X):
    l, U = np.linalg.eigh(np.cov(X.T))
    l, U = l[::-1], U[:, ::-1].T               # rows = components, decreasing
    s = np.sign(U[np.arange(len(U)), np.abs(U).argmax(axis=1)])
    return l, U * s[:, None]
exec(code)
EOF
}

@test "pca: --help on stdout, exit 0; --version" {
    run -0 --separate-stderr tensor pca --help
    [[ "${lines[0]}" == "Usage: tensor pca -k K [options] [FILE]" ]]
    [[ "$output" == *"--components K"* && "$output" == *"(default: not saved)"* ]]
    [ -z "$stderr" ]
    run -0 tensor whiten --help
    [[ "$output" == *"(default 1e-05)"* && "$output" == *"--zca"* ]]
    run -0 tensor pca --version
    [[ "$output" == "tensor (rbmkit) "* ]]
}

@test "pca: eigenvalues, components and projections match numpy" {
    tensor pca -k 3 --save "$T/p.model" "$T/x.tz" > "$T/y.tz"
    tensor export csv "$T/y.tz" > "$T/y.csv"
    tensor export csv --name eigenvalues "$T/p.model" > "$T/l.csv"
    tensor export csv --name components "$T/p.model" > "$T/u.csv"
    tensor export csv --name mean "$T/p.model" > "$T/m.csv"
    run -0 tensor info "$T/y.tz"
    [[ "$output" == *"f32"*"[3]"* ]]
    npcheck '
l, U = pca_np(X)
assert np.allclose(load("l.csv").ravel(), l[:3], rtol=1e-10), (load("l.csv"), l)
assert np.allclose(load("u.csv"), U[:3], atol=1e-10)
assert np.allclose(load("m.csv").ravel(), X.mean(0), rtol=1e-12)
Y = (X - X.mean(0)) @ U[:3].T
err = np.abs(load("y.csv") - Y).max() / np.abs(Y).max()
assert err < 1e-6, err
'
}

@test "pca: model file holds mean (D), components (K x D), eigenvalues (K) and model.type" {
    tensor pca -k 2 --save "$T/p.model" "$T/x.tz" > /dev/null
    run -0 tensor info --json "$T/p.model"
    $PY -c '
import json, sys
j = json.loads(sys.argv[1])
t = {x["name"]: x for x in j["tensors"]}
assert (t["mean"]["records"], t["mean"]["shape"]) == (6, [])
assert (t["components"]["records"], t["components"]["shape"]) == (2, [6])
assert (t["eigenvalues"]["records"], t["eigenvalues"]["shape"]) == (2, [])
assert j["tensors"][0]["attrs"]["model.type"] == "pca"
' "$output"
    tensor whiten --zca --epsilon 0.25 --save "$T/w.model" "$T/x.tz" > /dev/null
    run -0 tensor info --json "$T/w.model"
    $PY -c '
import json, sys
a = json.loads(sys.argv[1])["tensors"][0]["attrs"]
assert a == {"model.type": "whiten", "whiten.zca": 1, "whiten.epsilon": 0.25}, a
' "$output"
}

@test "whiten: PCA whitening gives identity covariance (numpy)" {
    tensor whiten --epsilon 0 "$T/x.tz" | tensor export csv > "$T/w.csv"
    npcheck '
W = load("w.csv")
assert W.shape == (400, 6)
assert np.abs(np.cov(W.T) - np.eye(6)).max() < 1e-5, np.cov(W.T)
assert np.abs(W.mean(0)).max() < 1e-5
'
}

@test "whiten: -k 4 keeps 4 whitened components; epsilon shrinks variances" {
    tensor whiten -k 4 --epsilon 0.5 "$T/x.tz" | tensor export csv > "$T/w.csv"
    npcheck '
W = load("w.csv")
l, U = pca_np(X)
assert W.shape == (400, 4)
want = np.diag(l[:4] / (l[:4] + 0.5))
assert np.abs(np.cov(W.T) - want).max() < 1e-5, (np.cov(W.T), want)
'
}

@test "whiten --zca: equals numpy U' S U (x - mean), symmetric, identity covariance" {
    tensor whiten --zca --epsilon 0.1 "$T/x.tz" | tensor export csv > "$T/z.csv"
    tensor whiten --zca --epsilon 0 "$T/x.tz" | tensor export csv > "$T/z0.csv"
    npcheck '
l, U = pca_np(X)
Wz = U.T @ np.diag(1 / np.sqrt(l + 0.1)) @ U
Z = (X - X.mean(0)) @ Wz.T
err = np.abs(load("z.csv") - Z).max() / np.abs(Z).max()
assert err < 1e-6, err
Z0 = load("z0.csv")
assert np.abs(np.cov(Z0.T) - np.eye(6)).max() < 1e-5
# ZCA is the symmetric whitening matrix: least squares of x -> z gives W = W^T
Xc = X - X.mean(0)
Wfit = np.linalg.lstsq(Xc, Z0, rcond=None)[0].T
assert np.abs(Wfit - Wfit.T).max() < 1e-4 * np.abs(Wfit).max()
'
}

@test "save then --model reproduces the fitted output byte for byte" {
    tensor pca -k 3 --save "$T/p.model" "$T/x.tz" > "$T/a.tz"
    tensor pca --model "$T/p.model" "$T/x.tz" > "$T/b.tz"
    cmp "$T/a.tz" "$T/b.tz"
    tensor whiten --save "$T/w.model" "$T/x.tz" > "$T/a.tz"
    tensor whiten --model "$T/w.model" < "$T/x.tz" > "$T/b.tz"
    cmp "$T/a.tz" "$T/b.tz"
    tensor whiten --zca -k 5 --epsilon 0.01 --save "$T/z.model" "$T/x.tz" > "$T/a.tz"
    tensor whiten --model "$T/z.model" "$T/x.tz" > "$T/b.tz"
    cmp "$T/a.tz" "$T/b.tz"
}

@test "stdin (buffered to a temporary file) and a named file give the same bytes" {
    tensor whiten --zca "$T/x.tz" > "$T/a.tz"
    cat "$T/x.tz" | tensor whiten --zca > "$T/b.tz"
    cmp "$T/a.tz" "$T/b.tz"
    tensor pca -k 2 - < "$T/x.tz" > "$T/c.tz"
    cat "$T/x.tz" | tensor pca -k 2 > "$T/d.tz"
    cmp "$T/c.tz" "$T/d.tz"
}

@test "records of rank 2 are flattened; ZCA keeps the record shape" {
    $PY -c '
import numpy as np, sys
x = np.loadtxt(sys.argv[1] + "/x.csv", delimiter=",").astype(np.float32)
np.save(sys.argv[1] + "/x23.npy", x.reshape(400, 2, 3))' "$T"
    tensor import npy "$T/x23.npy" > "$T/x23.tz"
    tensor pca -k 3 "$T/x23.tz" > "$T/a.tz"
    tensor pca -k 3 "$T/x.tz" > "$T/b.tz"
    cmp "$T/a.tz" "$T/b.tz"
    tensor whiten --zca "$T/x23.tz" > "$T/z.tz"
    run -0 tensor info "$T/z.tz"
    [[ "$output" == *"[2 3]"* ]]
}

@test "errors: -k larger than the width, scalar records, empty and tiny inputs" {
    run -1 --separate-stderr tensor pca -k 7 "$T/x.tz"
    [ "$stderr" = "tensor: pca: -k 7 is larger than the record width 6" ]
    [ -z "$output" ]
    $PY -c 'import numpy as np, sys; np.save(sys.argv[1], np.arange(5, dtype=np.float32))' "$T/s.npy"
    tensor import npy "$T/s.npy" > "$T/s.tz"
    run -1 --separate-stderr tensor pca -k 1 "$T/s.tz"
    [ "$stderr" = "tensor: pca: records are scalars (rank 0); PCA needs vectors" ]
    run -1 --separate-stderr tensor whiten < /dev/null
    [ "$stderr" = "tensor: whiten: empty input (no tensor stream)" ]
    tensor head -n 0 "$T/x.tz" > "$T/e.tz"
    run -1 --separate-stderr tensor pca -k 1 "$T/e.tz"
    [ "$stderr" = "tensor: pca: no records to fit" ]
    tensor head -n 1 "$T/x.tz" > "$T/one.tz"
    run -1 --separate-stderr tensor whiten "$T/one.tz"
    [ "$stderr" = "tensor: whiten: need at least 2 records to fit (got 1)" ]
}

@test "errors: singular covariance, NaN, truncated input" {
    $PY -c '
import numpy as np, sys
x = np.ones((10, 3), np.float32); x[:, 0] = np.arange(10)
np.save(sys.argv[1] + "/c.npy", x)
x[4, 1] = np.nan
np.save(sys.argv[1] + "/n.npy", x)' "$T"
    tensor import npy "$T/c.npy" > "$T/c.tz"
    tensor import npy "$T/n.npy" > "$T/n.tz"
    run -1 --separate-stderr tensor whiten --epsilon 0 "$T/c.tz"
    [ "$stderr" = "tensor: whiten: covariance is singular in the kept components; use a positive epsilon or fewer components" ]
    run -0 tensor whiten -k 1 --epsilon 0 "$T/c.tz"
    run -0 tensor whiten "$T/c.tz"
    run -1 --separate-stderr tensor pca -k 1 "$T/n.tz"
    [ "$stderr" = "tensor: pca: input contains NaN or infinite values" ]
    head -c 100 "$T/x.tz" > "$T/t.tz"
    run -1 --separate-stderr tensor pca -k 1 "$T/t.tz"
    [[ "$stderr" == "tensor: pca: "* ]]
}

@test "errors: --model type, width and option conflicts" {
    tensor pca -k 2 --save "$T/p.model" "$T/x.tz" > /dev/null
    tensor whiten --save "$T/w.model" "$T/x.tz" > /dev/null
    run -1 --separate-stderr tensor whiten --model "$T/p.model" "$T/x.tz"
    [ "$stderr" = "tensor: whiten: $T/p.model: a pca model; apply it with 'tensor pca --model'" ]
    run -1 --separate-stderr tensor pca --model "$T/x.tz" "$T/x.tz"
    [[ "$stderr" == "tensor: "* ]]
    tensor slice -c 0:5 "$T/x.tz" > "$T/x5.tz"
    run -1 --separate-stderr tensor pca --model "$T/p.model" "$T/x5.tz"
    [ "$stderr" = "tensor: pca: record width 5 does not match the model's 6" ]
    run -2 --separate-stderr tensor pca --model "$T/p.model" -k 2 "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: pca: --model cannot be combined with -k" ]
    run -2 --separate-stderr tensor pca "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: pca: -k K is required (or --model FILE)" ]
    run -2 --separate-stderr tensor pca -k 0 "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: invalid -k '0': must be in [1, 1073741824]" ]
    run -2 --separate-stderr tensor whiten --epsilon -1 "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: invalid --epsilon '-1': must be in [0, 1e+300]" ]
    run -2 --separate-stderr tensor pca -k 1 --zca "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: pca: --zca is an option of 'tensor whiten'" ]
    run -2 --separate-stderr tensor pca -k 1 "$T/x.tz" "$T/x.tz"
    [ "${stderr_lines[0]}" = "tensor: pca: too many operands (one FILE at most)" ]
    run -2 --separate-stderr tensor whiten --model - -
    [ "${stderr_lines[0]}" = "tensor: whiten: --model and the input cannot both be stdin" ]
    run -1 --separate-stderr tensor pca -k 1 "$T/missing.tz"
    [ "$stderr" = "tensor: $T/missing.tz: No such file or directory" ]
}

@test "a full disk is an error" {
    [ -w /dev/full ] || skip "no /dev/full"
    run -1 --separate-stderr sh -c "tensor pca -k 2 '$T/x.tz' > /dev/full"
    [[ "$stderr" == "tensor: "* ]]
}

@test "man page examples: MNIST digits, 50 components and ZCA (small)" {
    mn=../shared/data/mnist
    [ -f "$mn/train-images-idx3-ubyte.gz" ] || skip "MNIST not found in $mn"
    zcat "$mn/train-images-idx3-ubyte.gz" | tensor import idx |
        tensor head -n 1000 > "$T/m.tz"
    tensor pca -k 50 --save "$T/pca50.model" "$T/m.tz" > "$T/codes.tz"
    tensor pca --model "$T/pca50.model" "$T/m.tz" | cmp - "$T/codes.tz"
    tensor whiten --zca --epsilon 0.1 "$T/m.tz" > "$T/zca.tz"
    tensor export csv --name eigenvalues "$T/pca50.model" > "$T/l.csv"
    $PY - "$T" "$mn" <<'EOF'
import sys, gzip, numpy as np
t, mn = sys.argv[1:]
raw = gzip.open(mn + "/train-images-idx3-ubyte.gz").read()
X = np.frombuffer(raw, np.uint8, offset=16)[:1000 * 784].reshape(1000, 784).astype(float)
l = np.linalg.eigvalsh(np.cov(X.T))[::-1][:50]
got = np.loadtxt(t + "/l.csv")
assert np.allclose(got, l, rtol=1e-8), np.abs(got / l - 1).max()
EOF
    run -0 tensor info "$T/zca.tz"
    [[ "$output" == *"[28 28]"* && "$output" == *"1000"* ]]
}
