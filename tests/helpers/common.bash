# common.bash - shared set-up of the RBM tool tests (encode, rbm-sample):
# PATH, the tzhelp test helper (built by make into $BUILD/tests) and the
# numpy reference tests/helpers/ref.py.

setup_file() {
    TOP=${RBMKIT_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export TOP PY=/usr/bin/python3
    case ${BIN:-bin} in
    /*) PATH="$BIN:$PATH" ;;
    *) PATH="$TOP/${BIN:-bin}:$PATH" ;;
    esac
    export PATH
}

setup() {
    cd "$BATS_TEST_TMPDIR"
    # tzhelp: random RBMs with known parameters, text <-> .tz rows, attributes
    T="$TOP/${BUILD:-build}/tests/tzhelp"
    export PYTHONPATH="$TOP/tests/helpers"
}

# make_model NAME VIS HID V H SCALE SEED [K [TYPE]] -> NAME.rbm, NAME.txt
make_model() {
    local n=$1; shift
    "$T" model "$n.rbm" "$@" > "$n.txt"
}

# rows_of COLS DTYPE < text > stream
rows_of() { "$T" rows "$@"; }
dump() { "$T" dump "$@"; }
