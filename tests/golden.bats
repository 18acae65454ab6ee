#!/usr/bin/env bats
# golden.bats - today's outputs of rbm-train, encode, rbm-sample and
# ais-estimate, pinned in tests/golden/ (made by tests/golden/make-golden.sh,
# which says when to run it).  Each test reruns one case of make-golden.sh
# with the current binaries into a temporary folder and compares every file
# it makes with the golden one:
#   - byte for byte (cmp) when this machine's BLAS kernel is the one recorded
#     in tests/golden/KERNEL and the build is the default one (build/: gcc
#     -O2, the build the golden files come from; see STRICT_BUILDS);
#   - otherwise, with a "# note:" line on the TAP stream, by value: the same
#     tensors, dtypes, shapes, record counts and attributes, and every
#     number within rtol 1e-4 (+ atol 1e-6).  Sampled outputs (encode
#     --sample, rbm-sample, AIS estimates) are held to that too when only
#     the build differs (the same kernel and random streams: `make
#     check-asan`'s clang -O1 build differs from gcc -O2 only in the last
#     bits of the AIS sums); under another BLAS kernel samples may
#     legitimately differ, and only their tensors, dtypes, shapes, record
#     counts and the text around the numbers are compared.

bats_require_minimum_version 1.5.0

# builds whose floating-point bytes are those of tests/golden: the default
# gcc -O2 build only.  (The clang -O1 ASan build-asan of `make check-asan`
# gives the same bytes for every file but the AIS estimates, which differ
# in about the 9th digit.)
STRICT_BUILDS="build"

setup_file() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    G="$TOP/tests/golden"
    export TOP G BUILD=${BUILD:-build} BIN=${BIN:-bin}
    case $BIN in
    /*) PATH="$BIN:$PATH" ;;
    *) PATH="$TOP/$BIN:$PATH" ;;
    esac
    export PATH OPENBLAS_NUM_THREADS=1
    want=$(cat "$G/KERNEL")
    have=$("$TOP/$BUILD/bench/gemm-rate" -j 1 | sed -n 's/^kernel: \(.*\), [0-9]* threads$/\1/p')
    # STRICT 1: cmp; 0: values, samples too; -1: values, samples by shape
    STRICT=1
    case " $STRICT_BUILDS " in
    *" $BUILD "*) ;;
    *) STRICT=0
       echo "# note: build '$BUILD' is not the golden files' ($STRICT_BUILDS): comparing values with a tolerance, not bytes" >&3 ;;
    esac
    if [ "$have" != "$want" ]; then
        STRICT=-1
        echo "# note: BLAS kernel '$have' differs from the golden files' '$want': comparing values with a tolerance, not bytes, and samples by shape only" >&3
    fi
    export STRICT
}

setup() {
    O="$BATS_TEST_TMPDIR/out"
    export O
}

# gen CASE...: run cases of make-golden.sh into $O
gen() { "$G/make-golden.sh" -o "$O" "$@"; }

# numdiff [shape] A B: the two texts have the same lines and tokens; numbers
# within the tolerance, or (shape) just numbers on both sides
numdiff() {
    local shape=0
    [ "$1" = shape ] && { shape=1; shift; }
    awk -v rtol=1e-4 -v atol=1e-6 -v shape=$shape '
    function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ || s ~ /^[-+]?(inf|nan)$/ }
    function abs(x) { return x < 0 ? -x : x }
    function bad(m) { if (++nbad <= 5) print FILENAME ": line " FNR ": " m; }
    FILENAME == ARGV[1] { a[FNR] = $0; na = FNR; next }
    {
        nb = FNR
        if (!(FNR in a)) { bad("extra line"); next }
        n = split(a[FNR], x, /[ ,\t\[\]()=]+/); m = split($0, y, /[ ,\t\[\]()=]+/)
        if (n != m) { bad("fields " n " != " m); next }
        for (i = 1; i <= n; i++) {
            if (x[i] == y[i]) continue
            if (!isnum(x[i]) || !isnum(y[i])) { bad("'\''" x[i] "'\'' != '\''" y[i] "'\''"); continue }
            if (shape) continue
            if (x[i] ~ /inf|nan/ || y[i] ~ /inf|nan/) { bad(x[i] " != " y[i]); continue }
            d = abs(x[i] - y[i]); s = abs(x[i]) > abs(y[i]) ? abs(x[i]) : abs(y[i])
            if (d > atol + rtol * s) bad(x[i] " != " y[i] " (field " i ")")
        }
    }
    END {
        if (nb != na) { print "line counts " na " != " nb; nbad++ }
        exit nbad > 0
    }' "$1" "$2"
}

# the description of a .tz stream or model without the compressed sizes
info() { tensor info "$1" | grep -v 'bytes:'; }

# values A B: every tensor of the two .tz files as CSV, one after the other
values() {
    local f n names
    for f in "$1" "$2"; do
        names=$(tensor info "$f" | sed -n 's/^name: *//p')
        if [ -z "$names" ]; then
            tensor export csv "$f"
        else
            for n in $names; do echo "tensor $n"; tensor export csv --name "$n" "$f"; done
        fi > "$f.csv"
    done
    numdiff "$1.csv" "$2.csv"
}

# check KIND FILE...: compare $O/FILE with tests/golden/FILE; KIND, num
# (values that only rounding may change: models, means, exact log Z) or
# sampled, chooses the comparison under another BLAS kernel
check() {
    local kind=$1 f a b; shift
    for f in "$@"; do
        a="$BATS_TEST_TMPDIR/golden-$f" b="$O/$f"
        [ -f "$G/$f" ] || { echo "no golden file $f"; return 1; }
        [ -f "$b" ] || { echo "$f was not made"; return 1; }
        if [ "$STRICT" = 1 ]; then
            cmp "$G/$f" "$b" || { echo "$f differs from tests/golden/$f"; return 1; }
            continue
        fi
        cp "$G/$f" "$a"
        [ "$STRICT" = 0 ] && kind=num
        case $f:$kind in
        *.tz:num | *.rbm:num)
            info "$a" > "$a.info"; info "$b" > "$b.info"
            numdiff "$a.info" "$b.info" || { echo "$f: description differs"; return 1; }
            values "$a" "$b" || { echo "$f: values differ"; return 1; } ;;
        *.tz:sampled | *.rbm:sampled)
            info "$a" > "$a.info"; info "$b" > "$b.info"
            numdiff shape "$a.info" "$b.info" || { echo "$f: description differs"; return 1; }
            diff <(grep -E '^(name|dtype|shape|records):' "$a.info") \
                <(grep -E '^(name|dtype|shape|records):' "$b.info") ||
                { echo "$f: tensors, dtypes, shapes or record counts differ"; return 1; } ;;
        *:num) numdiff "$a" "$b" || { echo "$f: values differ"; return 1; } ;;
        *:sampled) numdiff shape "$a" "$b" || { echo "$f: text differs"; return 1; } ;;
        esac
    done
}

@test "rbm-train bernoulli CD-1: model, --emit stream, --log with --valid" {
    gen train-bern-cd1
    check num bern-cd1.rbm bern-cd1-emit.tz bern-cd1-log.tsv
}

@test "rbm-train bernoulli PCD-2" {
    gen train-bern-pcd2
    check num bern-pcd2.rbm
}

@test "rbm-train gaussian visible, fixed sigma" {
    gen train-gauss
    check num gauss.rbm
}

@test "rbm-train gaussian visible, --learn-sigma" {
    gen train-gauss-sigma
    check num gauss-sigma.rbm
}

@test "rbm-train softmax visible (groups of 5)" {
    gen train-softmax
    check num softmax.rbm
}

@test "rbm-train replicated-softmax visible" {
    gen train-rsm
    check num rsm.rbm
}

@test "rbm-train gaussian hidden" {
    gen train-gauss-hidden
    check num gauss-hidden.rbm
}

@test "rbm-train --dbm-bottom" {
    gen train-dbm-bottom
    check num dbm-bottom.rbm
}

@test "rbm-train --dbm-top (on the CD-1 model's --emit codes)" {
    gen train-dbm-top
    check num dbm-top.rbm
}

@test "rbm-train tiny bernoulli model (for ais-estimate --exact)" {
    gen train-tiny
    check num tiny.rbm
}

@test "encode bernoulli CD-1 model: means, --sample, --down, --down --sample" {
    gen encode-bern-cd1
    check num enc-bern-cd1-means.tz enc-bern-cd1-down.tz
    check sampled enc-bern-cd1-sample.tz enc-bern-cd1-down-sample.tz
}

@test "encode bernoulli PCD-2 model: means, --sample, --down" {
    gen encode-bern-pcd2
    check num enc-bern-pcd2-means.tz enc-bern-pcd2-down.tz
    check sampled enc-bern-pcd2-sample.tz
}

@test "encode gaussian model: means, --sample, --down" {
    gen encode-gauss
    check num enc-gauss-means.tz enc-gauss-down.tz
    check sampled enc-gauss-sample.tz
}

@test "encode gaussian learned-sigma model: means, --sample, --down" {
    gen encode-gauss-sigma
    check num enc-gauss-sigma-means.tz enc-gauss-sigma-down.tz
    check sampled enc-gauss-sigma-sample.tz
}

@test "encode softmax model: means, --sample, --down" {
    gen encode-softmax
    check num enc-softmax-means.tz enc-softmax-down.tz
    check sampled enc-softmax-sample.tz
}

@test "encode replicated-softmax model: means, --sample, --down, --down -D 25" {
    gen encode-rsm
    check num enc-rsm-means.tz enc-rsm-down.tz enc-rsm-down-d25.tz
    check sampled enc-rsm-sample.tz
}

@test "encode gaussian-hidden model: means, --sample, --down" {
    gen encode-gauss-hidden
    check num enc-gauss-hidden-means.tz enc-gauss-hidden-down.tz
    check sampled enc-gauss-hidden-sample.tz
}

@test "encode --dbm-bottom model: means, --sample, --down" {
    gen encode-dbm-bottom
    check num enc-dbm-bottom-means.tz enc-dbm-bottom-down.tz
    check sampled enc-dbm-bottom-sample.tz
}

@test "encode --dbm-top model: means, --sample, --down" {
    gen encode-dbm-top
    check num enc-dbm-top-means.tz enc-dbm-top-down.tz
    check sampled enc-dbm-top-sample.tz
}

@test "rbm-sample bernoulli: free and --clamp chains, samples and --means" {
    gen sample-bern
    check sampled sample-bern-cd1-free.tz sample-bern-cd1-free-means.tz \
        sample-bern-cd1-clamp.tz sample-bern-cd1-clamp-means.tz
}

@test "rbm-sample gaussian: free and --clamp chains, samples and --means" {
    gen sample-gauss
    check sampled sample-gauss-free.tz sample-gauss-free-means.tz \
        sample-gauss-clamp.tz sample-gauss-clamp-means.tz
}

@test "rbm-sample softmax: free and --clamp-group chains, samples and --means" {
    gen sample-softmax
    check sampled sample-softmax-free.tz sample-softmax-free-means.tz \
        sample-softmax-clamp.tz sample-softmax-clamp-means.tz
}

@test "ais-estimate AIS on the bernoulli model: tsv and text" {
    gen ais-bern
    check sampled ais-bern.tsv ais-bern.txt
}

@test "ais-estimate --exact: tiny model and the bernoulli model" {
    gen ais-exact
    check num ais-exact-tiny.tsv ais-exact-bern.tsv
}

@test "every golden file is made by make-golden.sh and checked here" {
    gen
    made=$(cd "$O" && ls | grep -vx KERNEL)
    kept=$(cd "$G" && ls | grep -vx -e KERNEL -e in -e make-golden.sh)
    [ "$made" = "$kept" ] || { diff <(echo "$kept") <(echo "$made"); false; }
    for f in $made; do
        grep -q -- " $f" "$BATS_TEST_FILENAME" || { echo "$f is not checked"; false; }
    done
    # the recorded kernel is the one make-golden.sh would record
    [ -s "$G/KERNEL" ]
}
