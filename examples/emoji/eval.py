#!/usr/bin/python3
"""eval.py - the emoji example's figures (examples/emoji/Makefile).

    eval.py map OUT              mean average precision of generated tags
    eval.py show OUT N           top generated tags next to the true ones
    eval.py nearest OUT QUERIES  nearest test pictures of tag queries (by joint
                                 code; and by the tags generated from them)

OUT is the example's output folder; the streams are read through
`tensor export npy`.  The references computed here are independent of
rbmkit: a frequency prior (every picture gets the training split's word
frequencies) and scikit-learn's logistic regression from the picture
features, one binary classifier per word.
"""
import io
import subprocess
import sys

import numpy as np


def load(path, name=None):
    cmd = ["tensor", "export", "npy"] + (["--name", name] if name else []) + [path]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.load(io.BytesIO(out))


def average_precision(scores, relevant):
    """AP of one ranking: mean precision at the rank of each relevant word."""
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    if hits.sum() == 0:
        return None
    ranks = np.nonzero(hits)[0] + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def mean_ap(scores, truth):
    aps = [average_precision(s, t) for s, t in zip(scores, truth)]
    aps = [a for a in aps if a is not None]
    return float(np.mean(aps)), len(aps)


def cmd_map(out):
    truth = load(f"{out}/test-text.tz") > 0
    gen = load(f"{out}/gen-text.tz")
    train_text = load(f"{out}/train-text.tz") > 0
    prior = np.tile(train_text.mean(0), (len(truth), 1))
    x_train = load(f"{out}/train-image.tz").astype(np.float64)
    x_test = load(f"{out}/test-image.tz").astype(np.float64)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(x_train)
    a, b = sc.transform(x_train), sc.transform(x_test)
    lr = np.zeros(truth.shape)
    for w in range(truth.shape[1]):
        y = train_text[:, w]
        if y.all() or not y.any():
            lr[:, w] = y.mean()
            continue
        m = LogisticRegression(C=0.1, max_iter=200).fit(a, y)
        lr[:, w] = m.predict_proba(b)[:, 1]
    rows = [("mdbm", gen), ("frequency prior", prior),
            ("logistic regression (scikit-learn)", lr)]
    print("tags\tmAP\trows")
    for name, s in rows:
        m, n = mean_ap(s, truth)
        print(f"{name}\t{m:.4f}\t{n}")


def cmd_show(out, n):
    vocab = [w.strip() for w in open(f"{out}/vocab.txt")]
    gen = load(f"{out}/gen-text.tz")
    tags = open(f"{out}/test-tags.txt").read().splitlines()
    names = open(f"{out}/test-names.txt").read().splitlines()
    for i in range(n):
        top = [vocab[j] for j in np.argsort(-gen[i], kind="stable")[:6]]
        print(f"{names[i]}\n  generated: {' '.join(top)}\n  true:      {tags[i]}")


def cmd_nearest(out, queries):
    img = load(f"{out}/test-pictures.tz")
    codes = load(f"{out}/test-codes.tz").astype(np.float64)
    q = load(f"{out}/query-codes.tz").astype(np.float64)
    words = [line.split()[0] for line in open(queries) if line.strip()]
    k = 8
    cn = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    sim = qn @ cn.T
    pick = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    names = open(f"{out}/test-names.txt").read().splitlines()
    # the same queries answered by the tags generated from each picture:
    # the pictures whose generated tags give the word most probability
    vocab = [w.strip() for w in open(f"{out}/vocab.txt")]
    gen = load(f"{out}/gen-text.tz")
    rows = []
    for w, row in zip(words, pick):
        if w not in vocab:
            print(f"{w}: not in the vocabulary")
            continue
        print(f"{w} (joint code): " + "; ".join(names[j] for j in row))
        by_tag = np.argsort(-gen[:, vocab.index(w)], kind="stable")[:k]
        print(f"{w} (generated tags): " + "; ".join(names[j] for j in by_tag))
        rows += [row, by_tag]
    np.save(f"{out}/nearest.npy", img[np.concatenate(rows)])


if __name__ == "__main__":
    if sys.argv[1] == "map":
        cmd_map(sys.argv[2])
    elif sys.argv[1] == "show":
        cmd_show(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "nearest":
        cmd_nearest(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
