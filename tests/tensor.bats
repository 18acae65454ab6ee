#!/usr/bin/env bats
# tensor.bats - the `tensor` dispatcher and its stream subcommands (info,
# cat, head, slice, paste, shuffle, split, stats, standardize, binarize),
# plus the man page's EXAMPLES.  Inputs are made with `tensor import csv`;
# contents are compared through `tensor export csv` against what python3
# computes from the same numbers.

bats_require_minimum_version 1.5.0

setup() {
    # tests/run puts the right bin/ on PATH; run alone, use the repo's
    if [ -z "${RBMKIT_TOP:-}" ]; then
        PATH="$BATS_TEST_DIRNAME/../bin:$PATH"
    fi
    MNIST="$BATS_TEST_DIRNAME/../../shared/data/mnist"
    cd "$BATS_TEST_TMPDIR" || exit 1
    # a.tz: 4 records of u8 [3]
    printf '1,2,3\n4,5,6\n7,8,9\n10,11,12\n' | tensor import csv --dtype u8 > a.tz
}

need_mnist() {
    [ -r "$MNIST/t10k-images-idx3-ubyte.gz" ] ||
        skip "MNIST not found in ../shared/data/mnist"
}

# n x d matrix of f32 values from a seeded generator, as csv
gen_csv() {   # rows cols seed [offset]
    python3 -c '
import random, sys
n, d, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
off = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
random.seed(seed)
for i in range(n):
    print(",".join(repr(float(__import__("struct").unpack("f",
          __import__("struct").pack("f", off + random.gauss(0, 1) * (j + 1)))[0]))
          for j in range(d)))' "$@"
}

# ---- dispatcher -------------------------------------------------------------

@test "tensor --help lists every subcommand on stdout, exit 0" {
    run --separate-stderr tensor --help
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    for s in info cat head slice paste shuffle split stats standardize binarize \
             import export tile bow words pca whiten; do
        grep -qE "^  $s " <<<"$output" || { echo "missing $s"; false; }
    done
}

@test "tensor --version" {
    run --separate-stderr tensor --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^tensor\ \(rbmkit\)\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "SUBCOMMAND --help: usage on stdout, exit 0, every option with a default" {
    for s in info cat head slice paste shuffle split stats standardize binarize; do
        run --separate-stderr tensor "$s" --help
        [ "$status" -eq 0 ] || { echo "$s: status $status"; false; }
        [ -z "$stderr" ]
        [[ "${lines[0]}" == "Usage: tensor $s"* ]] || { echo "$s: ${lines[0]}"; false; }
    done
    run tensor head --help
    [[ "$output" == *"-n, --records N          records to keep (default 10)"* ]]
    run tensor shuffle --help
    [[ "$output" == *"(default 1)"* ]]
    run tensor binarize --help
    [[ "$output" == *"threshold (default 0.5)"* ]]
}

@test "no subcommand is a usage error" {
    run -2 --separate-stderr tensor
    [ -z "$output" ]
    [ "$stderr" = "tensor: missing subcommand
Try 'tensor --help' for more information." ]
}

@test "unknown subcommand is a usage error" {
    run -2 --separate-stderr tensor frobnicate a.tz
    [ "$stderr" = "tensor: unknown subcommand 'frobnicate'
Try 'tensor --help' for more information." ]
    run -2 --separate-stderr tensor --frob
    [ "${stderr_lines[0]}" = "tensor: unknown option '--frob' (a subcommand must come first)" ]
}

@test "bad options of a subcommand are usage errors" {
    run -2 --separate-stderr tensor cat --bogus a.tz
    [ "${stderr_lines[0]}" = "tensor: cat: unknown option '--bogus'" ]
    run -2 --separate-stderr tensor head -x a.tz
    [ "${stderr_lines[0]}" = "tensor: head: unknown option '-x'" ]
    run -2 --separate-stderr tensor head -n
    [ "${stderr_lines[0]}" = "tensor: head: option '-n' requires an argument" ]
    run -2 --separate-stderr tensor head --records
    [ "${stderr_lines[0]}" = "tensor: head: option '--records' requires an argument" ]
    run -2 --separate-stderr tensor head -n 1x a.tz
    [ "${stderr_lines[0]}" = "tensor: invalid record count '1x': not a non-negative integer" ]
    run -2 --separate-stderr tensor head a.tz a.tz
    [ "${stderr_lines[0]}" = "tensor: head: too many operands (one FILE at most)" ]
    run -2 --separate-stderr tensor cat --level 99 a.tz
    [ "${stderr_lines[1]}" = "Try 'tensor --help' for more information." ]
}

@test "a missing input file is a runtime error" {
    run -1 --separate-stderr tensor cat nosuch.tz
    [ "$stderr" = "tensor: nosuch.tz: No such file or directory" ]
    run -1 --separate-stderr tensor info < /dev/null
    [ "$stderr" = "tensor: empty input (no tensor stream)" ]
}

@test "binary output to a terminal is refused without -f" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "tensor cat a.tz" /dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"tensor: refusing to write binary data to a terminal (use -f to force)"* ]]
    run script -qec "tensor cat -f a.tz >/dev/null; echo rc=\$?" /dev/null
    [[ "$output" == *"rc=0"* ]]
}

# ---- info -----------------------------------------------------------------

@test "info: dtype, shape, count and the file's bytes" {
    run --separate-stderr tensor info a.tz
    [ "$status" -eq 0 ]
    size=$(stat -c %s a.tz)
    [ "${lines[0]}" = "dtype:      u8" ]
    [ "${lines[1]}" = "shape:      [3] per record" ]
    [ "${lines[2]}" = "records:    4" ]
    [[ "${lines[3]}" == "bytes:      $size (raw 12, ratio "* ]]
    # the same from stdin
    run --separate-stderr tensor info - < a.tz
    [ "${lines[2]}" = "records:    4" ]
}

@test "info --json: a model file's tensors, attributes, and bytes adding up" {
    gen_csv 50 3 1 | tensor import csv > x.tz
    tensor stats --save st.tz x.tz > /dev/null
    tensor info --json st.tz > info.json
    python3 - "$(stat -c %s st.tz)" <<'EOF'
import json, sys
j = json.load(open("info.json"))
size = int(sys.argv[1])
t = j["tensors"]
assert [x["name"] for x in t] == ["mean", "std", "min", "max"], t
assert all(x["dtype"] == "f64" and x["shape"] == [] and x["records"] == 3 for x in t)
assert all(x["raw_bytes"] == 24 for x in t)
assert t[0]["attrs"] == {"stats.records": 50}, t[0]["attrs"]
assert j["bytes"] == size and sum(x["bytes"] for x in t) == size, (j, size)
EOF
    run tensor info st.tz
    [ "${lines[0]}" = "name:       mean" ]
    [ "${lines[5]}" = "attribute:  stats.records = 50" ]
    [ "${lines[-2]}" = "tensors:    4" ]
    [ "${lines[-1]}" = "total bytes: $(stat -c %s st.tz)" ]
}

@test "info of a corrupt stream fails with the reader's message" {
    head -c 60 a.tz > cut.tz
    run -1 --separate-stderr tensor info cut.tz
    [[ "$stderr" == "tensor: cut.tz: truncated stream: "* ]]
}

# ---- cat ----------------------------------------------------------------

@test "cat: files and stdin, contents in order" {
    printf '13,14,15\n' | tensor import csv --dtype u8 > b.tz
    tensor cat a.tz b.tz a.tz > out.tz
    run --separate-stderr tensor export csv out.tz
    [ "$output" = "$(printf '1,2,3\n4,5,6\n7,8,9\n10,11,12\n13,14,15\n1,2,3\n4,5,6\n7,8,9\n10,11,12')" ]
    # stdin, "-", and a byte-level concatenation all read the same
    tensor cat < a.tz > c1.tz
    tensor cat - < a.tz > c2.tz
    cmp c1.tz c2.tz
    cat a.tz b.tz | tensor cat > c3.tz
    tensor cat a.tz b.tz > c4.tz
    cmp c3.tz c4.tz
}

@test "cat a.tz b.tz | tensor info counts both" {
    cat a.tz a.tz | tensor info > info.txt
    grep -qx "records:    8" info.txt
}

@test "cat of unequal streams is an error" {
    printf '1,2\n' | tensor import csv --dtype u8 > two.tz
    printf '1,2,3\n' | tensor import csv --dtype f32 > f.tz
    run -1 --separate-stderr tensor cat a.tz two.tz
    [ "$stderr" = "tensor: cannot concatenate: a.tz is u8 [3] but two.tz is u8 [2]" ]
    run -1 --separate-stderr tensor cat a.tz f.tz
    [ "$stderr" = "tensor: cannot concatenate: a.tz is u8 [3] but f.tz is f32 [3]" ]
    run -1 --separate-stderr bash -c 'cat a.tz f.tz | tensor cat'
    [ "$stderr" = "tensor: concatenated streams differ: u8 [3] then f32 [3]" ]
}

@test "cat keeps the first input's attributes and name" {
    gen_csv 10 2 3 | tensor import csv > x.tz
    tensor stats --save st.tz x.tz > /dev/null
    tensor head -n 5 st.tz > mean.tz           # tensor 'mean' with stats.records
    tensor cat mean.tz mean.tz | tensor info > info.txt
    grep -qx "name:       mean" info.txt
    grep -qx "records:    4" info.txt
    grep -qx "attribute:  stats.records = 10" info.txt
}

@test "cat of a stream cut at every byte, or with any byte flipped, fails cleanly" {
    # one section, several chunks: only the whole file is a valid stream
    python3 -c 'for i in range(20): print(",".join(str((i*7+j*3) % 256) for j in range(3)))' |
        tensor import csv --dtype u8 --chunk-size 12 > s.tz
    n=$(stat -c %s s.tz)
    [ "$n" -gt 200 ] && [ "$n" -lt 600 ]
    tensor cat s.tz > /dev/null
    python3 - <<'EOF'
import subprocess
d = open("s.tz", "rb").read()
bad = []
def check(what, data):
    p = subprocess.run(["tensor", "cat"], input=data, capture_output=True)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 1 or err.count("\n") != 1 or not err.startswith("tensor: "):
        bad.append((what, p.returncode, err))
for i in range(len(d)):
    check("cut at %d" % i, d[:i])
for i in range(len(d)):
    e = bytearray(d); e[i] ^= 0xFF
    check("flip at %d" % i, bytes(e))
assert not bad, bad[:5]
EOF
}

@test "cat | head -c 100 exits quietly" {
    python3 - <<'EOF'
import os
n, d = 2000, 784
hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d), }" % (n, d)
hdr = hdr.ljust(127 - 10) + "\n"          # 10 + len(hdr) = 128
with open("big.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode())
    f.write(os.urandom(n * d))
EOF
    tensor import npy big.npy > big.tz
    [ "$(stat -c %s big.tz)" -gt 1000000 ]
    for t in 1 2; do
        run --separate-stderr bash -c "set -o pipefail; tensor cat --compress-threads $t big.tz | head -c 100 > /dev/null"
        [ "$status" -eq 0 ]
        [ -z "$stderr" ]
    done
}

@test "writing to /dev/full is an error" {
    for cmd in "cat a.tz" "head -n 2 a.tz" "slice -r 1: a.tz" "shuffle a.tz" \
               "binarize a.tz" "standardize a.tz" "stats a.tz" "info a.tz" "paste a.tz a.tz"; do
        run -1 --separate-stderr bash -c "tensor $cmd > /dev/full"
        [ "$stderr" = "tensor: write error: No space left on device" ] || { echo "$cmd: $stderr"; false; }
    done
}

# ---- head ------------------------------------------------------------

@test "head: first N records, fewer when the input is short, none for 0" {
    run tensor export csv <(tensor head -n 2 a.tz)
    [ "$output" = "$(printf '1,2,3\n4,5,6')" ]
    tensor head -n 100 a.tz > h.tz
    cmp <(tensor export csv h.tz) <(tensor export csv a.tz)
    tensor head -n 0 a.tz | tensor info > info.txt
    grep -qx "records:    0" info.txt
    grep -qx "dtype:      u8" info.txt
    # default 10
    python3 -c 'for i in range(25): print(i)' | tensor import csv > n.tz
    [ "$(tensor head n.tz | tensor export csv | wc -l)" -eq 10 ]
}

@test "head stops reading: a stream damaged after record N still gives N" {
    python3 -c 'for i in range(5000): print(i % 251, (i * 7) % 253, sep=",")' |
        tensor import csv --dtype u8 --chunk-size 1000 > long.tz
    size=$(stat -c %s long.tz)
    head -c $((size - 100)) long.tz > cut.tz
    run -1 --separate-stderr tensor cat cut.tz
    [[ "$stderr" == "tensor: cut.tz: truncated stream"* ]]
    tensor head -n 5 cut.tz > h.tz
    run tensor export csv h.tz
    [ "$output" = "$(printf '0,0\n1,7\n2,14\n3,21\n4,28')" ]
    tensor head -n 5 < cut.tz | cmp - h.tz
}

# ---- slice -------------------------------------------------------------

@test "slice: rows and columns agree with python slicing" {
    gen_csv 9 5 11 > m.csv
    tensor import csv < m.csv > m.tz
    python3 - <<'EOF'
import struct, subprocess
f32 = lambda x: struct.unpack("f", struct.pack("f", float(x)))[0]
def sl(spec, seq):
    if ":" not in spec:
        i = int(spec)
        return [seq[i]] if -len(seq) <= i < len(seq) else []
    a, b = spec.split(":")
    return seq[slice(int(a) if a else None, int(b) if b else None)]
rows = [[f32(x) for x in l.split(",")] for l in open("m.csv")]
bad = []
for r in [":", "2:5", "3:", ":4", "-3:", "-4:-1", "1:-2", "5:2", "0", "4", "-1",
          "-9", "-20:3", "7:100", "-2:-5", "-1000000000000:", ":-1000000000000",
          "2:-1000000000000", "-1000000000000:-3"]:
    for c in [":", "1:3", "-2:", "0", "-1", ":-3"]:
        s = subprocess.run(["tensor", "slice", "-r", r, "-c", c, "m.tz"],
                           capture_output=True, check=True).stdout
        out = subprocess.run(["tensor", "export", "csv"], input=s,
                             capture_output=True, check=True).stdout.decode()
        got = [[f32(x) for x in l.split(",")] for l in out.splitlines()]
        want = [sl(c, row) for row in sl(r, rows)]
        if got != want:
            bad.append((r, c, got, want))
assert not bad, bad[:2]
EOF
}

@test "slice keeps dtype and attributes; long form options" {
    tensor slice --rows 1:3 --cols 1: a.tz > s.tz
    run tensor export csv s.tz
    [ "$output" = "$(printf '5,6\n8,9')" ]
    tensor info s.tz | grep -qx "dtype:      u8"
    gen_csv 10 2 3 | tensor import csv > x.tz
    tensor stats --save st.tz x.tz > /dev/null
    tensor head -n 2 st.tz > mean.tz          # the tensor 'mean' alone
    tensor slice -r 1:2 mean.tz | tensor info > info.txt
    grep -qx "name:       mean" info.txt
    grep -qx "records:    1" info.txt
    grep -qx "attribute:  stats.records = 10" info.txt
}

@test "slice errors" {
    run -2 --separate-stderr tensor slice -r 1:2:3 a.tz
    [ "${stderr_lines[0]}" = "tensor: invalid row range '1:2:3': expected A:B" ]
    run -2 --separate-stderr tensor slice -c x a.tz
    [ "${stderr_lines[0]}" = "tensor: invalid column range 'x': expected A:B" ]
    run -1 --separate-stderr tensor slice -c 5: a.tz
    [ "$stderr" = "tensor: column range selects no columns of 3" ]
}

@test "slice -c on image records cuts the last axis of every row" {
    # 3 records of shape [4 5]: value = 100 r + 10 i + j
    python3 -c '
import struct, sys
hdr = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 3, 4, 5)
body = bytes((100 * r + 10 * i + j) % 256 for r in range(3) for i in range(4) for j in range(5))
sys.stdout.buffer.write(hdr + body)' > img.idx
    tensor import idx img.idx > img.tz
    tensor slice -c 1:3 img.tz > left.tz
    tensor info left.tz | grep -qx "shape:      \[4 2\] per record"
    run tensor export csv left.tz
    want=$(python3 -c '
for r in range(3):
    print(",".join(str((100 * r + 10 * i + j) % 256) for i in range(4) for j in range(1, 3)))')
    [ "$output" = "$want" ]
}

# ---- paste ------------------------------------------------------------

@test "paste --side-by-side undoes slice -c; rank-1 inputs take the rows of the first image" {
    python3 -c '
import struct, sys
hdr = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 3, 4, 5)
body = bytes((100 * r + 10 * i + j) % 256 for r in range(3) for i in range(4) for j in range(5))
sys.stdout.buffer.write(hdr + body)' > sb.idx
    tensor import idx sb.idx > sb.tz
    tensor slice -c 0:2 sb.tz > a.tz
    tensor slice -c 2: sb.tz > b.tz
    tensor paste --side-by-side a.tz b.tz > ab.tz
    cmp <(tensor export csv ab.tz) <(tensor export csv sb.tz)
    tensor info ab.tz | grep -qx "shape:      \[4 5\] per record"
    # b as flat rows of 12 values: split into the 4 rows of a
    tensor export csv b.tz | tensor import csv --dtype u8 > bflat.tz
    tensor paste --side-by-side a.tz bflat.tz > ab2.tz
    cmp <(tensor export csv ab2.tz) <(tensor export csv sb.tz)
    run -1 --separate-stderr tensor paste --side-by-side bflat.tz bflat.tz
    [ "$stderr" = "tensor: paste --side-by-side: no input has records of rank 2 or more to take the row count from" ]
}

@test "paste: records side by side, dtype promoted" {
    printf '1,2\n3,4\n5,6\n7,8\n' | tensor import csv --dtype i8 > b.tz
    printf -- '-1.5\n2.25\n0\n1e3\n' | tensor import csv --dtype f32 > c.tz
    tensor paste a.tz b.tz c.tz > p.tz
    run tensor export csv p.tz
    [ "$output" = "$(printf '1,2,3,1,2,-1.5\n4,5,6,3,4,2.25\n7,8,9,5,6,0\n10,11,12,7,8,1000')" ]
    tensor info --json p.tz | grep -q '"dtype": "f32", "shape": \[6\], "records": 4'
    tensor paste a.tz b.tz | tensor info --json | grep -q '"dtype": "i16", "shape": \[5\]'
    tensor paste a.tz a.tz | tensor info --json | grep -q '"dtype": "u8", "shape": \[6\]'
    printf '1\n2\n3\n4\n' | tensor import csv --dtype i32 > d.tz
    tensor paste c.tz d.tz | tensor info --json | grep -q '"dtype": "f64"'
    # stdin as one of the inputs
    tensor paste a.tz - < b.tz | cmp - <(tensor paste a.tz b.tz)
}

@test "paste: unequal record counts name both counts" {
    tensor head -n 3 a.tz > a3.tz
    run -1 --separate-stderr tensor paste a.tz a3.tz
    [ "$stderr" = "tensor: paste: a.tz has 4 records but a3.tz has 3" ]
    run -1 --separate-stderr tensor paste a3.tz a.tz
    [ "$stderr" = "tensor: paste: a3.tz has 3 records but a.tz has 4" ]
    run -2 --separate-stderr tensor paste a.tz
    [ "${stderr_lines[0]}" = "tensor: paste: needs at least two FILE operands" ]
    run -2 --separate-stderr tensor paste - -
    [ "${stderr_lines[0]}" = "tensor: paste: stdin ('-') can be named only once" ]
}

# ---- shuffle -----------------------------------------------------------

@test "shuffle: a deterministic permutation of the records" {
    python3 -c 'for i in range(200): print(i, i % 7, sep=",")' | tensor import csv --dtype i32 > n.tz
    tensor shuffle -s 42 n.tz > s1.tz
    tensor shuffle --seed 42 < n.tz > s2.tz
    cmp s1.tz s2.tz
    tensor shuffle -s 43 n.tz > s3.tz
    run ! cmp -s <(tensor export csv s1.tz) <(tensor export csv s3.tz)
    run ! cmp -s <(tensor export csv s1.tz) <(tensor export csv n.tz)
    cmp <(tensor export csv s1.tz | sort) <(tensor export csv n.tz | sort)
    # default seed is 1
    cmp <(tensor shuffle n.tz) <(tensor shuffle -s 1 n.tz)
}

# ---- split -------------------------------------------------------------

@test "split: N-record files that cat back to the input" {
    python3 -c 'for i in range(10): print(i)' | tensor import csv --dtype u16 > n.tz
    tensor split -n 3 -p piece- n.tz
    [ "$(ls piece-*)" = "$(printf 'piece-0000.tz\npiece-0001.tz\npiece-0002.tz\npiece-0003.tz')" ]
    for i in 0 1 2; do tensor info piece-000$i.tz | grep -qx "records:    3"; done
    tensor info piece-0003.tz | grep -qx "records:    1"
    cmp <(tensor cat piece-*.tz | tensor export csv) <(tensor export csv n.tz)
    # default prefix, from stdin, exact multiple: no empty last file
    tensor split -n 5 < n.tz
    [ "$(ls part*)" = "$(printf 'part0000.tz\npart0001.tz')" ]
    [ -z "$(ls | grep tmp)" ]
}

@test "split errors" {
    run -2 --separate-stderr tensor split a.tz
    [ "${stderr_lines[0]}" = "tensor: split: missing -n N (records per file)" ]
    run -2 --separate-stderr tensor split -n 0 a.tz
    [ "${stderr_lines[0]}" = "tensor: invalid record count '0': must be at least 1" ]
    run -1 --separate-stderr tensor split -n 1 -p nodir/x a.tz
    [[ "$stderr" == "tensor: nodir/x0000.tz: No such file or directory" ]]
    # a damaged input keeps the finished pieces and no partial one
    # (records go out in batches of 4096: the damage is met while the third
    # piece, records 6000.., is being written)
    python3 -c 'for i in range(10000): print(i % 256)' |
        tensor import csv --dtype u8 --chunk-size 1000 > n.tz
    head -c $(($(stat -c %s n.tz) - 40)) n.tz > cut.tz
    run -1 --separate-stderr tensor split -n 3000 -p q cut.tz
    [[ "$stderr" == "tensor: cut.tz: truncated stream"* ]]
    [ "$(ls q*)" = "$(printf 'q0000.tz\nq0001.tz')" ]
    [ -z "$(ls | grep tmp)" ]
}

# ---- stats -----------------------------------------------------------

@test "stats agree with python's statistics module" {
    # large offset: a naive sum of squares would lose the variance
    gen_csv 3000 4 7 10000 > x.csv
    tensor import csv < x.csv > x.tz
    tensor stats x.tz > got.tsv
    python3 - <<'EOF'
import statistics
rows = [[float(v) for v in l.split(",")] for l in open("x.csv")]
got = [l.rstrip("\n").split("\t") for l in open("got.tsv")]
assert got[0] == ["column", "mean", "std", "min", "max"], got[0]
assert len(got) == 1 + 4
for j in range(4):
    col = [r[j] for r in rows]
    want = [statistics.fmean(col), statistics.pstdev(col), min(col), max(col)]
    g = [float(x) for x in got[1 + j][1:]]
    assert int(got[1 + j][0]) == j
    for a, b in zip(g, want):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (j, g, want)
EOF
}

@test "stats --save writes mean, std, min, max; stats of nothing is an error" {
    tensor stats --save st.tz a.tz > t.tsv
    run tensor export csv --name std st.tz
    python3 -c '
import sys
v = [float(x) for x in sys.argv[1].split()]
ref = 3 * (5 / 4) ** 0.5        # population std of 1,4,7,10
assert all(abs(x - ref) < 1e-12 for x in v), v' "$output"
    run tensor export csv --name min st.tz
    [ "$output" = "$(printf '1\n2\n3')" ]
    tensor head -n 0 a.tz > empty.tz
    run -1 --separate-stderr tensor stats empty.tz
    [ "$stderr" = "tensor: empty.tz: no records to compute statistics of" ]
}

# ---- standardize ------------------------------------------------------------

@test "standardize: f32 output with column mean 0 and std 1" {
    gen_csv 500 3 5 100 | tensor import csv > x.tz
    tensor standardize x.tz > z.tz
    tensor info z.tz | grep -qx "dtype:      f32"
    tensor stats z.tz > st.tsv
    python3 - <<'EOF'
rows = [l.split("\t") for l in open("st.tsv")][1:]
for r in rows:
    mean, std = float(r[1]), float(r[2])
    assert abs(mean) < 1e-6 and abs(std - 1) < 1e-6, r
EOF
}

@test "standardize: saved statistics give the same output; pipes work" {
    gen_csv 300 4 9 | tensor import csv > x.tz
    tensor standardize --save st.tz x.tz > z1.tz
    tensor standardize --stats st.tz x.tz > z2.tz
    cmp z1.tz z2.tz
    tensor cat x.tz | tensor standardize > z3.tz
    cmp z1.tz z3.tz
    # the statistics saved are those 'tensor stats --save' writes
    tensor stats --save st2.tz x.tz > /dev/null
    cmp <(tensor export csv --name mean st.tz) <(tensor export csv --name mean st2.tz)
    cmp <(tensor export csv --name std st.tz) <(tensor export csv --name std st2.tz)
    # statistics of another shape are refused
    run -1 --separate-stderr tensor standardize --stats st.tz a.tz
    [ "$stderr" = "tensor: st.tz: 'mean' has 4 values but input records have 3" ]
    run -1 --separate-stderr tensor standardize --stats a.tz a.tz
    [ "$stderr" = "tensor: a.tz: not a model: a tensor has no name" ]
}

@test "standardize: a constant column is divided by 1" {
    printf '5,1\n5,2\n5,3\n' | tensor import csv > k.tz
    run tensor export csv <(tensor standardize k.tz)
    [ "${lines[0]%%,*}" = "0" ] && [ "${lines[1]%%,*}" = "0" ] && [ "${lines[2]%%,*}" = "0" ]
    python3 -c '
import sys
v = [float(l.split(",")[1]) for l in sys.argv[1].split()]
s = (2 / 3) ** 0.5
want = [-1 / s, 0, 1 / s]
assert all(abs(a - b) < 1e-6 for a, b in zip(v, want)), v' "$output"
}

# ---- binarize ------------------------------------------------------------------

@test "binarize: u8 is scaled by 1/255 before the threshold" {
    printf '0,127,128,255\n' | tensor import csv --dtype u8 > px.tz
    run tensor export csv <(tensor binarize px.tz)
    [ "$output" = "0,0,1,1" ]
    run tensor export csv <(tensor binarize -t 0.9 px.tz)
    [ "$output" = "0,0,0,1" ]
    run tensor export csv <(tensor binarize --no-scale --threshold 127 px.tz)
    [ "$output" = "0,0,1,1" ]
    printf -- '-1,0.5,0.50001,3\n' | tensor import csv > f.tz
    run tensor export csv <(tensor binarize f.tz)
    [ "$output" = "0,0,1,1" ]
    tensor binarize f.tz | tensor info | grep -qx "dtype:      u8"
}

@test "binarize --stochastic: seeded, 0/1, mean near p" {
    python3 -c 'print("\n".join(",".join(["0.3"] * 100) for _ in range(200)))' |
        tensor import csv > p.tz
    tensor binarize --stochastic -s 5 p.tz > b1.tz
    tensor binarize --stochastic --seed 5 < p.tz > b2.tz
    cmp b1.tz b2.tz
    tensor binarize --stochastic -s 6 p.tz > b3.tz
    run ! cmp -s b1.tz b3.tz
    tensor export csv b1.tz | python3 -c '
import sys
v = [int(x) for l in sys.stdin for x in l.strip().split(",")]
assert set(v) <= {0, 1} and len(v) == 20000
m = sum(v) / len(v)
assert abs(m - 0.3) < 0.02, m     # 6 standard errors'
    # probabilities outside [0, 1] clip
    printf -- '-2,0,1,7\n' | tensor import csv > c.tz
    run tensor export csv <(tensor binarize --stochastic c.tz)
    [ "$output" = "0,0,1,1" ]
}

@test "binarize option conflicts are usage errors" {
    run -2 --separate-stderr tensor binarize -t 0.2 --stochastic a.tz
    [ "${stderr_lines[0]}" = "tensor: binarize: --threshold and --stochastic exclude each other" ]
    run -2 --separate-stderr tensor binarize -s 3 a.tz
    [ "${stderr_lines[0]}" = "tensor: binarize: --seed needs --stochastic" ]
    run -2 --separate-stderr tensor binarize -t abc a.tz
    [ "${stderr_lines[0]}" = "tensor: invalid threshold 'abc': not a number" ]
}

# ---- the man page's EXAMPLES, at a small size -------------------------------------

@test "man page examples (MNIST)" {
    need_mnist
    zcat "$MNIST/t10k-images-idx3-ubyte.gz" | tensor import idx > train.tz
    tensor info train.tz > info.txt
    grep -qx "records:    10000" info.txt
    tensor head -n 100 train.tz | tensor tile > digits.png
    [ "$(head -c 8 digits.png | od -An -tx1 | tr -d ' ')" = "89504e470d0a1a0a" ]
    tensor head -n 500 train.tz > small.tz
    tensor slice -r 400: small.tz > valid.tz
    tensor slice -r :400 small.tz > fit.tz
    tensor binarize fit.tz > fit-bin.tz
    tensor shuffle -s 7 fit-bin.tz | tensor split -n 100 -p batch-
    [ "$(ls batch-*.tz | wc -l)" -eq 4 ]
    tensor cat batch-*.tz | tensor info | grep -qx "records:    400"
    tensor stats --save pixels.tz fit.tz > pixels.tsv
    [ "$(wc -l < pixels.tsv)" -eq 785 ]
    tensor standardize --stats pixels.tz valid.tz > valid-std.tz
    tensor info valid-std.tz | grep -qx "records:    100"
    zcat "$MNIST/t10k-labels-idx1-ubyte.gz" | tensor import idx | tensor head -n 500 > labels.tz
    tensor paste small.tz labels.tz | tensor info --json | grep -q '"shape": \[785\], "records": 500'
}
