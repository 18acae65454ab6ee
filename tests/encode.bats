#!/usr/bin/env bats
# encode.bats - tests for encode(1): conditionals against numpy for every unit
# type, sampling frequencies, errors, provenance, constant memory.

bats_require_minimum_version 1.5.0

setup_file() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export TOP PY=/usr/bin/python3
    case ${BIN:-bin} in
    /*) PATH="$BIN:$PATH" ;;
    *) PATH="$TOP/${BIN:-bin}:$PATH" ;;
    esac
    export PATH
    # tzhelp: random RBMs with known parameters, text <-> .tz rows, attributes.
    # Built from the library sources so it does not depend on other tools.
    cat > "$BATS_FILE_TMPDIR/tzhelp.c" <<'CEOF'
/* tzhelp - test helper: random RBM models, text <-> .tz rows, attributes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rbm.h"
#include "tz.h"

static void die(const char *m) { fprintf(stderr, "tzhelp: %s\n", m); exit(1); }

int main(int argc, char **argv)
{
    if (argc >= 9 && !strcmp(argv[1], "model")) {
        /* model OUT VIS HID V H SCALE SEED [K [TYPE]]: params as text on stdout */
        int V = atoi(argv[5]), H = atoi(argv[6]);
        double sc = atof(argv[7]);
        rbm *m = rbm_new(V, H, rbm_unit_parse(argv[3]), rbm_unit_parse(argv[4]));
        if (!m) die("rbm_new");
        if (argc > 9) m->softmax_group = atoi(argv[9]);
        rng_t g;
        rng_seed(&g, strtoull(argv[8], NULL, 10));
        for (int i = 0; i < V * H; i++) m->W[i] = (float)(sc * rng_normal(&g));
        for (int i = 0; i < V; i++) m->vbias[i] = (float)(0.5 * sc * rng_normal(&g));
        for (int j = 0; j < H; j++) m->hbias[j] = (float)(0.5 * sc * rng_normal(&g));
        if (m->sigma)
            for (int i = 0; i < V; i++) m->sigma[i] = 0.5f + rng_uniform(&g);
        tz_model *mf = tz_model_new();
        if (rbm_to_model(m, mf)) die("rbm_to_model");
        if (argc > 10) tz_attr_set_s(&mf->meta, "model.type", argv[10]);
        char err[300];
        if (tz_model_save(mf, argv[2], err, sizeof err)) die(err);
        printf("%d %d %d\n", V, H, m->softmax_group);
        for (int i = 0; i < V * H; i++) printf("%.9g\n", m->W[i]);
        for (int i = 0; i < V; i++) printf("%.9g\n", m->vbias[i]);
        for (int j = 0; j < H; j++) printf("%.9g\n", m->hbias[j]);
        for (int i = 0; i < V; i++) printf("%.9g\n", m->sigma ? m->sigma[i] : 1.0f);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "rows")) {
        /* rows COLS DTYPE [KEY=VALUE]: whitespace numbers on stdin -> stream */
        uint64_t cols = strtoull(argv[2], NULL, 10);
        tz_header h;
        tz_header_init(&h);
        tz_header_set_shape(&h, tz_dtype_parse(argv[3]), 1, &cols);
        if (argc > 4) {
            char *kv = argv[4], *eq = strchr(kv, '=');
            *eq = 0;
            tz_attr_set_s(&h, kv, eq + 1);
        }
        tz_write_opts o;
        tz_write_opts_init(&o);
        tz_writer *w = tz_writer_new(stdout, &o);
        tz_writer_begin(w, &h);
        double *row = malloc(cols * sizeof *row);
        for (;;) {
            uint64_t i = 0;
            for (; i < cols; i++)
                if (scanf("%lf", &row[i]) != 1) break;
            if (i == 0) break;
            if (i < cols) die("short row");
            tz_write_as(w, TZ_F64, row, 1);
        }
        if (tz_writer_close(w)) die("write");
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "rand")) {
        /* rand N COLS SEED: N random 0/1 u8 rows */
        uint64_t n = strtoull(argv[2], NULL, 10), cols = strtoull(argv[3], NULL, 10);
        rng_t g;
        rng_seed(&g, strtoull(argv[4], NULL, 10));
        tz_header h;
        tz_header_init(&h);
        tz_header_set_shape(&h, TZ_U8, 1, &cols);
        tz_write_opts o;
        tz_write_opts_init(&o);
        tz_writer *w = tz_writer_new(stdout, &o);
        tz_writer_begin(w, &h);
        unsigned char *row = malloc(cols);
        for (uint64_t r = 0; r < n; r++) {
            for (uint64_t i = 0; i < cols; i++) row[i] = rng_next(&g) >> 63;
            tz_write(w, row, 1);
        }
        if (tz_writer_close(w)) die("write");
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "dump")) {
        /* dump [KEY]: stream on stdin -> one record a line; or an attribute */
        tz_reader *r = tz_reader_new(stdin);
        if (tz_next(r) != 1) die(tz_reader_error(r));
        const tz_header *h = tz_reader_header(r);
        if (argc > 2) {
            const tz_attr *a = tz_attr_get(h, argv[2]);
            if (!a) die("no such attribute");
            if (a->type == TZ_ATTR_STR) printf("%s\n", a->s);
            else if (a->type == TZ_ATTR_I64) printf("%lld\n", (long long)a->i);
            else printf("%.17g\n", a->f);
            return 0;
        }
        uint64_t cols = tz_record_elems(h);
        double *row = malloc(cols * sizeof *row);
        long n;
        while ((n = tz_read_f64(r, row, 1)) == 1)
            for (uint64_t i = 0; i < cols; i++)
                printf("%.9g%c", row[i], i + 1 < cols ? ' ' : '\n');
        if (n < 0) die(tz_reader_error(r));
        return 0;
    }
    die("usage: tzhelp model|rows|rand|dump ...");
}
CEOF
    cc -std=c11 -D_GNU_SOURCE -O1 -I"$TOP/lib" -o "$BATS_FILE_TMPDIR/tzhelp" \
        "$BATS_FILE_TMPDIR/tzhelp.c" "$TOP/lib/tz.c" "$TOP/lib/rbm.c" \
        "$TOP/lib/rng.c" "$TOP/lib/gemm.c" -lzstd -lblas -lm -ldl -lpthread
    cat > "$BATS_FILE_TMPDIR/ref.py" <<'PEOF'
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
PEOF
}

setup() {
    cd "$BATS_TEST_TMPDIR"
    T="$BATS_FILE_TMPDIR/tzhelp"
    export PYTHONPATH="$BATS_FILE_TMPDIR"
}

# make_model NAME VIS HID V H SCALE SEED [K [TYPE]] -> NAME.rbm, NAME.txt
make_model() {
    local n=$1; shift
    "$T" model "$n.rbm" "$@" > "$n.txt"
}

# rows_of COLS DTYPE < text > stream
rows_of() { "$T" rows "$@"; }
# repeat N FILE: FILE's lines N times over
repeat() { "$PY" -c 'import sys; sys.stdout.write(open(sys.argv[2]).read() * int(sys.argv[1]))' "$@"; }
dump() { "$T" dump "$@"; }

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
    [[ "$output" == *"(default: 256)"* ]]
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
    ! cmp -s a.tz c.tz
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
    make_model d bernoulli bernoulli 6 4 1.0 1 1 dbn
    printf '1 0 1 0 1 0\n' | rows_of 6 u8 > v.tz
    run -1 --separate-stderr encode d.rbm v.tz
    [ "$stderr" = "encode: unsupported model type 'dbn'" ]
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
