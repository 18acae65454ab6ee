# ref.py - numpy reference for the RBM conditionals, written from the
# formulas in BRIEF.md section 2 (independent of lib/rbm.c).
import numpy as np

def params(path):
    t = open(path).read().split()
    V, H, K = int(t[0]), int(t[1]), int(t[2])
    a = np.array(t[3:], dtype=np.float64)
    W = a[:V * H].reshape(V, H)
    c = a[V * H:V * H + V]
    b = a[V * H + V:V * H + V + H]
    s = a[V * H + V + H:]
    return W, c, b, s, K

def rows(path):
    return np.loadtxt(path, ndmin=2)

def sig(x):
    return 1 / (1 + np.exp(-x))

def up(vis, hid, P, v):
    W, c, b, s, K = P
    D = v.sum(1, keepdims=True) if vis == 'replicated-softmax' else 1.0
    x = (v / s) @ W + D * b
    return sig(x) if hid == 'bernoulli' else x

def down(vis, P, h, D=1.0):
    W, c, b, s, K = P
    y = c + (h @ W.T) * (s if vis == 'gaussian' else 1)
    if vis == 'bernoulli':
        return sig(y)
    if vis == 'gaussian':
        return y
    if vis == 'softmax':
        g = y.reshape(len(y), -1, K)
        e = np.exp(g - g.max(2, keepdims=True))
        return (e / e.sum(2, keepdims=True)).reshape(y.shape)
    e = np.exp(y - y.max(1, keepdims=True))
    return D * e / e.sum(1, keepdims=True)

def close(got, want, what, atol=2e-5, rtol=2e-5):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want) - rtol * np.abs(want)
    assert err.max() <= atol, '%s: max error %g' % (what, err.max() + 0)
