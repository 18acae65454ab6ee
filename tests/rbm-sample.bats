#!/usr/bin/env bats
# rbm-sample.bats - tests for rbm-sample(1): sample distributions against
# exact enumeration on tiny models, clamping, determinism, errors.

bats_require_minimum_version 1.5.0

load helpers/common

@test "rbm-sample --help and --version" {
    run rbm-sample --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "Usage: rbm-sample [OPTION]... MODEL [INPUT]" ]]
    [[ "$output" == *"(default: 1000)"* ]]
    run rbm-sample --version
    [ "$status" -eq 0 ]
    [[ "$output" == "rbm-sample (rbmkit) "* ]]
}

@test "rbm-sample: bernoulli samples follow the exact p(v) (enumeration, chi-square)" {
    # V=6, H=4: p(v) = exp(c'v) prod_j (1 + exp(b_j + v'W_j)) / Z over all
    # 64 states.  20000 independent chains of 40 steps; the chi-square
    # statistic (63 degrees of freedom, bins of expected count < 5 pooled)
    # must stay below 63 + 6 sd, and the same samples must be rejected by
    # the product of the exact marginals, so the test can tell.
    make_model m bernoulli bernoulli 6 4 1.5 31
    rbm-sample -n 20000 --steps 40 -s 9 m.rbm | dump > s.txt
    "$PY" - <<'PEOF'
import itertools, numpy as np, ref
W, c, b, s, K = ref.params('m.txt')
S = np.array(list(itertools.product([0, 1], repeat=6)), float)
logp = S @ c + np.log1p(np.exp(b + S @ W)).sum(1)
p = np.exp(logp - logp.max()); p /= p.sum()
x = ref.rows('s.txt'); n = len(x)
assert x.shape == (20000, 6) and set(np.unique(x)) <= {0.0, 1.0}
idx = (x @ (2 ** np.arange(5, -1, -1))).astype(int)
obs = np.bincount(idx, minlength=64)
def chi2(q):
    e = n * q; big = e >= 5
    o2 = np.append(obs[big], obs[~big].sum()); e2 = np.append(e[big], e[~big].sum())
    keep = e2 > 0
    return (((o2 - e2) ** 2)[keep] / e2[keep]).sum(), keep.sum() - 1
x2, dof = chi2(p)
print('chi2', x2, 'dof', dof)
assert x2 < dof + 6 * np.sqrt(2 * dof), x2
m = (S * p[:, None]).sum(0)
q = np.prod(np.where(S == 1, m, 1 - m), 1)
x2q, _ = chi2(q)
print('chi2 vs independent units', x2q)
assert x2q > dof + 6 * np.sqrt(2 * dof)
PEOF
}

@test "rbm-sample --clamp: the free units follow the exact p(v_free | v_clamped)" {
    make_model m bernoulli bernoulli 6 4 1.5 32
    "$PY" -c 'import numpy as np; np.savetxt("v.txt", np.tile([1, 0, 0, 0, 0, 0], (20000, 1)), fmt="%d")'
    rows_of 6 u8 < v.txt > v.tz
    rbm-sample --clamp 0:2 --steps 40 m.rbm v.tz | dump > s.txt
    "$PY" - <<'PEOF'
import itertools, numpy as np, ref
W, c, b, s, K = ref.params('m.txt')
F = np.array(list(itertools.product([0, 1], repeat=4)), float)
S = np.hstack([np.tile([1.0, 0.0], (16, 1)), F])
logp = S @ c + np.log1p(np.exp(b + S @ W)).sum(1)
p = np.exp(logp - logp.max()); p /= p.sum()
x = ref.rows('s.txt'); n = len(x)
assert x.shape == (20000, 6)
assert np.all(x[:, 0] == 1) and np.all(x[:, 1] == 0)
obs = np.bincount((x[:, 2:] @ [8, 4, 2, 1]).astype(int), minlength=16)
x2 = ((obs - n * p) ** 2 / (n * p)).sum()
print('chi2', x2, 'p', p)
assert x2 < 15 + 6 * np.sqrt(30), x2
PEOF
    # the same clamp given as a mask stream gives the same bytes
    printf '1 1 0 0 0 0\n' | rows_of 6 u8 > mask.tz
    rbm-sample --clamp 0:2 --steps 5 -n 100 m.rbm v.tz > a.tz
    rbm-sample --clamp-mask mask.tz --steps 5 -n 100 m.rbm v.tz > b.tz
    rbm-sample --clamp 0,1 --steps 5 -n 100 m.rbm v.tz > c.tz
    cmp a.tz b.tz
    cmp a.tz c.tz
}

@test "rbm-sample --clamp-group: softmax group 1 follows p(group 1 | group 0)" {
    make_model m softmax bernoulli 6 4 1.5 33 3
    "$PY" -c 'import numpy as np; np.savetxt("v.txt", np.tile([0, 1, 0, 1, 0, 0], (20000, 1)), fmt="%d")'
    rows_of 6 u8 < v.txt > v.tz
    rbm-sample --clamp-group 0 --steps 30 m.rbm v.tz | dump > s.txt
    "$PY" - <<'PEOF'
import numpy as np, ref
W, c, b, s, K = ref.params('m.txt')
S = np.array([[0, 1, 0] + list(np.eye(3)[k]) for k in range(3)], float)
logp = S @ c + np.log1p(np.exp(b + S @ W)).sum(1)
p = np.exp(logp - logp.max()); p /= p.sum()
x = ref.rows('s.txt'); n = len(x)
assert np.all(x[:, :3] == [0, 1, 0]) and np.all(x[:, 3:].sum(1) == 1)
obs = x[:, 3:].sum(0)
x2 = ((obs - n * p) ** 2 / (n * p)).sum()
print('chi2', x2, 'p', p)
assert x2 < 2 + 6 * 2, x2
PEOF
}

@test "rbm-sample: replicated-softmax counts follow the exact p(v) for D=3" {
    # p(v) ∝ D!/prod(v_k!) exp(c'v) prod_j (1 + exp(D b_j + v'W_j)) over the
    # 10 count vectors of 3 words in a vocabulary of 3
    make_model m replicated-softmax bernoulli 3 3 1.0 34
    rbm-sample -n 20000 --steps 30 --length 3 m.rbm | dump > s.txt
    "$PY" - <<'PEOF'
import itertools, math, numpy as np, ref
W, c, b, s, K = ref.params('m.txt')
S = np.array([v for v in itertools.product(range(4), repeat=3) if sum(v) == 3], float)
mult = np.array([math.factorial(3) / np.prod([math.factorial(int(k)) for k in v]) for v in S])
logp = np.log(mult) + S @ c + np.log1p(np.exp(3 * b + S @ W)).sum(1)
p = np.exp(logp - logp.max()); p /= p.sum()
x = ref.rows('s.txt'); n = len(x)
assert np.all(x.sum(1) == 3)
key = {tuple(v): i for i, v in enumerate(S.astype(int))}
obs = np.bincount([key[tuple(v)] for v in x.astype(int)], minlength=len(S))
x2 = ((obs - n * p) ** 2 / (n * p)).sum()
print('chi2', x2, 'p', p)
assert x2 < 9 + 6 * np.sqrt(18), x2
PEOF
}

@test "rbm-sample: gaussian samples have the exact mixture mean and covariance" {
    # p(v) = sum_h p(h) N(c + sigma W h, diag sigma^2), p(h) from enumeration
    make_model m gaussian bernoulli 2 3 1.0 35
    rbm-sample -n 20000 --steps 30 m.rbm | dump > s.txt
    "$PY" - <<'PEOF'
import itertools, numpy as np, ref
W, c, b, s, K = ref.params('m.txt')
Hs = np.array(list(itertools.product([0, 1], repeat=3)), float)
mu = c + s * (Hs @ W.T)                      # (8, 2) component means
logq = Hs @ b + ((mu ** 2 - c ** 2) / (2 * s ** 2)).sum(1)
q = np.exp(logq - logq.max()); q /= q.sum()
m = q @ mu
C = np.diag(s ** 2) + (mu - m).T @ ((mu - m) * q[:, None])
x = ref.rows('s.txt'); n = len(x)
se = np.sqrt(np.diag(C) / n)
print('mean', x.mean(0), m, 'cov', np.cov(x.T), C)
assert np.all(np.abs(x.mean(0) - m) < 5 * se)
vse = np.sqrt(2 / n) * np.diag(C) * 2      # generous: mixture kurtosis
assert np.all(np.abs(np.diag(np.cov(x.T)) - np.diag(C)) < 5 * vse)
PEOF
}

@test "rbm-sample: deterministic, and a chain does not depend on its neighbours" {
    make_model m bernoulli bernoulli 8 5 1.0 36
    rbm-sample -n 3 --steps 20 -s 4 m.rbm > a.tz
    rbm-sample -n 3 --steps 20 --seed 4 m.rbm > b.tz
    cmp a.tz b.tz
    rbm-sample -n 3 --steps 20 -s 5 m.rbm > c.tz
    run ! cmp -s a.tz c.tz
    # 300 chains run as blocks of 256 and 44: the first 3 are the same
    rbm-sample -n 300 --steps 20 -s 4 m.rbm | dump > big.txt
    [ "$(head -n 3 big.txt)" = "$(dump < a.tz)" ]
    [ "$(wc -l < big.txt)" -eq 300 ]
}

@test "rbm-sample --every: chain-major rows, the last one equal to the final state" {
    make_model m bernoulli bernoulli 8 5 1.0 37
    rbm-sample -n 3 --steps 20 --burn-in 10 --every 5 m.rbm | dump > e.txt
    rbm-sample -n 3 --steps 20 m.rbm | dump > f.txt
    [ "$(wc -l < e.txt)" -eq 6 ]
    [ "$(sed -n '2p;4p;6p' e.txt)" = "$(cat f.txt)" ]
    # burn-in default is half the steps: emits at steps 15 and 20
    rbm-sample -n 3 --steps 20 --every 5 m.rbm | dump > d.txt
    cmp d.txt e.txt
    rbm-sample -n 2 --steps 10 --every 1 --burn-in 0 m.rbm | dump > all.txt
    [ "$(wc -l < all.txt)" -eq 20 ]
}

@test "rbm-sample --means: E[v|h] rows, clamped columns held" {
    make_model m bernoulli bernoulli 6 4 1.0 38
    printf '1 0 1 0 1 0\n0 1 1 0 0 1\n' | rows_of 6 u8 modality.name=image > v.tz
    rbm-sample --means --clamp 0:2 --steps 3 m.rbm v.tz > p.tz
    [ "$(dump modality.name < p.tz)" = image ]
    [ "$(dump sample.output < p.tz)" = means ]
    dump < p.tz > p.txt
    "$PY" - <<'PEOF'
import numpy as np, itertools, ref
P = ref.params('m.txt')
x = ref.rows('p.txt')
assert x.shape == (2, 6)
assert np.all(x[:, :2] == [[1, 0], [0, 1]])
# every mean is p(v|h) for one of the 16 hidden states
Hs = np.array(list(itertools.product([0, 1], repeat=4)), float)
pv = ref.down('bernoulli', P, Hs)
for r in x:
    assert np.min(np.abs(pv[:, 2:] - r[2:]).max(1)) < 1e-5, r
PEOF
}

@test "rbm-sample: -n limits the rows taken from INPUT" {
    make_model m bernoulli bernoulli 6 4 1.0 39
    printf '1 0 1 0 1 0\n0 1 1 0 0 1\n1 1 1 1 1 1\n' | rows_of 6 u8 > v.tz
    rbm-sample --steps 5 m.rbm v.tz | dump > all.txt
    rbm-sample -n 2 --steps 5 m.rbm v.tz | dump > two.txt
    rbm-sample --steps 5 m.rbm - < v.tz | dump > stdin.txt
    [ "$(wc -l < all.txt)" -eq 3 ]
    [ "$(head -n 2 all.txt)" = "$(cat two.txt)" ]
    cmp all.txt stdin.txt
}

@test "rbm-sample: usage errors" {
    make_model m bernoulli bernoulli 6 4 1.0 1
    make_model r replicated-softmax bernoulli 6 4 1.0 1
    make_model s softmax bernoulli 6 4 1.0 1 3
    printf '1 0 1 0 1 0\n' | rows_of 6 u8 > v.tz
    printf '1 0 0 0 1 0\n' | rows_of 6 u8 > sv.tz
    run -2 --separate-stderr rbm-sample
    [ "$stderr" = "rbm-sample: missing MODEL
Try 'rbm-sample --help' for more information." ]
    run -2 --separate-stderr rbm-sample --clamp 0:3 m.rbm
    [ "${stderr_lines[0]}" = "rbm-sample: clamping needs an INPUT stream to take the clamped values from" ]
    run -2 --separate-stderr rbm-sample --clamp 5:2 m.rbm v.tz
    [ "${stderr_lines[0]}" = "rbm-sample: invalid --clamp '5:2': empty range" ]
    run -2 --separate-stderr rbm-sample --clamp 0:9 m.rbm v.tz
    [ "${stderr_lines[0]}" = "rbm-sample: invalid --clamp '9': must be in [0, 6]" ]
    run -2 --separate-stderr rbm-sample --clamp x m.rbm v.tz
    [ "${stderr_lines[0]}" = "rbm-sample: invalid --clamp 'x': not an integer" ]
    run -2 --separate-stderr rbm-sample --clamp-group 0 m.rbm v.tz
    [ "${stderr_lines[0]}" = "rbm-sample: --clamp-group needs softmax visible units" ]
    run -2 --separate-stderr rbm-sample --clamp 0:2 s.rbm sv.tz
    [ "${stderr_lines[0]}" = "rbm-sample: clamped columns must cover whole softmax groups of 3" ]
    run -2 --separate-stderr rbm-sample --clamp 0 r.rbm v.tz
    [ "${stderr_lines[0]}" = "rbm-sample: clamping is not supported for replicated-softmax visible units" ]
    run -2 --separate-stderr rbm-sample --steps 10 --burn-in 8 --every 5 m.rbm
    [ "${stderr_lines[0]}" = "rbm-sample: --burn-in 8 plus --every 5 exceeds --steps 10: nothing to emit" ]
    run -2 --separate-stderr rbm-sample --steps 0 m.rbm
    [ "${stderr_lines[0]}" = "rbm-sample: invalid steps '0': must be in [1, 1099511627776]" ]
    run -2 --separate-stderr rbm-sample --length 5 m.rbm
    [ "${stderr_lines[0]}" = "rbm-sample: --length applies only to replicated-softmax visible units" ]
}

@test "rbm-sample: data errors" {
    make_model m bernoulli bernoulli 6 4 1.0 1
    make_model d bernoulli bernoulli 6 4 1.0 1 1 dbm
    printf '1 0 1 0 1\n' | rows_of 5 u8 > v5.tz
    run -1 --separate-stderr rbm-sample m.rbm v5.tz
    [ "$stderr" = "rbm-sample: input has 5 columns, model expects 6" ]
    printf '1 0 1 0 1 0\n1 0 2 0 1 0\n' | rows_of 6 u8 > v2.tz
    run -1 --separate-stderr rbm-sample m.rbm v2.tz
    [ "$stderr" = "rbm-sample: input row 2: non-binary value for bernoulli units (--allow-real accepts values in [0, 1])" ]
    run -1 --separate-stderr rbm-sample d.rbm
    [ "$stderr" = "rbm-sample: d.rbm: corrupt model: dbm.layers must be 2 to 16" ]
    printf '1 0 1\n' | rows_of 3 u8 > m3.tz
    run -1 --separate-stderr rbm-sample --clamp-mask m3.tz m.rbm v2.tz
    [ "$stderr" = "rbm-sample: m3.tz: clamp mask has 3 columns, model expects 6" ]
    printf '1 0 1 0 1 2\n' | rows_of 6 u8 > m2.tz
    run -1 --separate-stderr rbm-sample --clamp-mask m2.tz m.rbm v2.tz
    [ "$stderr" = "rbm-sample: m2.tz: clamp mask values must be 0 or 1" ]
    run -1 --separate-stderr rbm-sample nope.rbm
    [ "$stderr" = "rbm-sample: nope.rbm: No such file or directory" ]
    run -1 --separate-stderr sh -c 'rbm-sample m.rbm > /dev/full'
    [ "$stderr" = "rbm-sample: write error: No space left on device" ]
}

@test "rbm-sample: the examples of rbm-sample(1)" {
    make_model l1 bernoulli bernoulli 784 16 0.1 40
    "$T" rand 5 784 2 > test.tz
    rbm-sample -n 1 --steps 1000 --burn-in 200 --every 10 l1.rbm > chain.tz
    [ "$(dump < chain.tz | wc -l)" -eq 80 ]
    rbm-sample --clamp 0:392 --steps 100 --means l1.rbm test.tz > completed.tz
    [ "$(dump < completed.tz | wc -l)" -eq 5 ]
    [ "$(dump < completed.tz | cut -d' ' -f1-392)" = "$(dump < test.tz | cut -d' ' -f1-392)" ]
    if ! tensor tile --help > /dev/null 2>&1; then
        skip "tensor tile is not built"
    fi
    rbm-sample -n 10 l1.rbm | tensor tile --shape 28x28 > fantasy.png
    [ "$(head -c 4 fantasy.png | od -An -c | tr -d ' ')" = "211PNG" ]
}
