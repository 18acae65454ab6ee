# deep.bash - shared set-up of the deep-model tests (stack.bats, deep.bats):
# PATH, numpy, the tzhelp helper, and small data and RBMs built once per file
# in $D (every test runs in $D, so file names in messages are short):
#   d500.tz  the first 500 digits of examples/data/mnist-2k.tz, binarised
#   y500.tz  their labels (u8, one class index a record), y500.csv as text
#   l1.rbm   784 -> 50, l2.rbm 50 -> 30 on l1's codes       (for a DBN)
#   b1.rbm   784 -> 50 --dbm-bottom, b2.rbm 50 -> 30 --dbm-top (for a DBM)
#   tiny.tz  600 rows of 8 bits from 3 noisy prototypes
#   t1.rbm 8 -> 5, t2.rbm 5 -> 4 (a tiny DBN); u1.rbm, u2.rbm the same
#   pretrained for a DBM (--dbm-bottom / --dbm-top)
# Everything runs on one thread (-j 1): models depend on the thread count.

# deep_env: TOP, PY, PATH (the built tools first), D (the file's
# directory, also the working one)
deep_env() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export TOP PY=/usr/bin/python3
    case ${BIN:-bin} in
    /*) PATH="$BIN:$PATH" ;;
    *) PATH="$TOP/${BIN:-bin}:$PATH" ;;
    esac
    export PATH
    export D="$BATS_FILE_TMPDIR"
    cd "$D"
}

setup_file() {
    deep_env || return 1
    export T="$TOP/${BUILD:-build}/tests/tzhelp"
    local ex="$TOP/examples/data"
    tensor head -n 500 "$ex/mnist-2k.tz" | tensor binarize > d500.tz
    tensor head -n 500 "$ex/mnist-2k-labels.tz" > y500.tz
    tensor export csv y500.tz > y500.csv
    rbm-train -q -j 1 -H 50 -e 2 -o l1.rbm d500.tz
    encode -j 1 l1.rbm d500.tz | rbm-train -q -j 1 -H 30 -e 2 --allow-real -o l2.rbm
    rbm-train -q -j 1 --dbm-bottom -H 50 -e 2 -o b1.rbm d500.tz
    encode -j 1 b1.rbm d500.tz |
        rbm-train -q -j 1 --dbm-top -H 30 -e 2 --allow-real -o b2.rbm
    "$PY" -c '
import numpy as np
r = np.random.default_rng(1)
proto = (r.random((3, 8)) < 0.5).astype(int)
x = proto[r.integers(0, 3, 600)]
x = np.where(r.random(x.shape) < 0.05, 1 - x, x)
np.savetxt("tiny.csv", x, fmt="%d", delimiter=",")'
    tensor import csv --dtype u8 tiny.csv > tiny.tz
    rbm-train -q -j 1 -H 5 -e 20 -l 0.1 -o t1.rbm tiny.tz
    encode -j 1 t1.rbm tiny.tz | rbm-train -q -j 1 -H 4 -e 20 --allow-real -o t2.rbm
    rbm-train -q -j 1 --dbm-bottom -H 5 -e 20 -o u1.rbm tiny.tz
    encode -j 1 u1.rbm tiny.tz |
        rbm-train -q -j 1 --dbm-top -H 4 -e 20 --allow-real -o u2.rbm
}

setup() {
    cd "$D"
}

# attr FILE KEY: the value of attribute KEY as tensor info prints it
attr() {
    tensor info "$1" | sed -n "s/^attribute:  $2 = //p"
}

# csv_range FILE.csv: exit 0 when every value lies in [0, 1]
csv_range() {
    awk -F, '{ for (i = 1; i <= NF; i++) if (!($i >= 0 && $i <= 1)) exit 1 }' "$1"
}
