#!/usr/bin/env bats
# tensor import / export / tile: round trips against independent readers
# (numpy, a small PNG decoder in python), and every malformed input with
# its exact message.

bats_require_minimum_version 1.5.0
PY=/usr/bin/python3

setup_file() {
    # A PNG decoder that needs only zlib: prints "W H DEPTH" then the
    # samples of 8-bit gray images row by row, space-separated.
    cat > "$BATS_FILE_TMPDIR/png.py" <<'EOF'
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
pos, idat, ihdr = 8, b'', None
while pos < len(d):
    n, = struct.unpack('>I', d[pos:pos+4]); t = d[pos+4:pos+8]; body = d[pos+8:pos+8+n]
    assert zlib.crc32(t + body) == struct.unpack('>I', d[pos+8+n:pos+12+n])[0], 'crc'
    if t == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    if t == b'IDAT': idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
assert ctype == 0, 'gray'
bpp = depth // 8
raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); out = []
for y in range(h):
    f = raw[y*(stride+1)]; line = bytearray(raw[y*(stride+1)+1:(y+1)*(stride+1)])
    for i in range(stride):
        a = line[i-bpp] if i >= bpp else 0; b = prev[i]; c = prev[i-bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    out.append([line[i] if bpp == 1 else line[i] << 8 | line[i+1] for i in range(0, stride, bpp)])
print(w, h, depth)
for r in out: print(' '.join(map(str, r)))
EOF
}

setup() {
    cd "$BATS_TEST_TMPDIR"
    MNIST="$BATS_TEST_DIRNAME/../../shared/data/mnist"
}

npy_load() {   # python expression over a = np.load(FILE)
    $PY -c "import numpy as np, sys; a = np.load(sys.argv[1]); $2" "$1"
}

# ---- IDX -------------------------------------------------------------------

@test "import idx: synthetic u8 images and i16/f32 arrays equal the payload" {
    $PY - <<'EOF'
import numpy as np, struct
rng = np.random.default_rng(7)
def idx(name, code, a, be):
    with open(name, 'wb') as f:
        f.write(bytes([0, 0, code, a.ndim]) + b''.join(struct.pack('>I', d) for d in a.shape))
        f.write(a.astype(be).tobytes())
    np.save(name + '.ref.npy', a)
idx('u8.idx', 0x08, rng.integers(0, 256, (7, 4, 5)).astype('u1'), 'u1')
idx('i16.idx', 0x0B, rng.integers(-30000, 30000, (6, 3)).astype('i2'), '>i2')
idx('f32.idx', 0x0D, rng.standard_normal((5, 2, 2, 3)).astype('f4'), '>f4')
idx('f64.idx', 0x0E, rng.standard_normal((3,)), '>f8')
idx('lab.idx', 0x08, np.arange(9, dtype='u1'), 'u1')
EOF
    for f in u8 i16 f32 f64 lab; do
        tensor import idx $f.idx > $f.tz
        tensor export npy $f.tz > $f.npy
        run $PY -c "import numpy as np, sys
a = np.load('$f.npy'); r = np.load('$f.idx.ref.npy')
print(a.dtype == r.dtype.newbyteorder('='), a.shape == r.shape, np.array_equal(a, r))"
        [ "$output" = "True True True" ]
    done
    # u8 payload byte for byte
    tail -c +$((16 + 1 + 4)) u8.idx > payload
    run npy_load u8.npy "sys.stdout.buffer.write(a.tobytes())"
    [ "$status" -eq 0 ]
    tensor export npy u8.tz | tail -c $((7 * 4 * 5)) | cmp - <(tail -c $((7 * 4 * 5)) u8.idx)
    run tensor info lab.tz
    [[ "$output" == *"[] per record"* ]]
}

@test "import idx: MNIST train images and labels equal the IDX payload (example)" {
    [ -f "$MNIST/train-images-idx3-ubyte.gz" ] || skip "MNIST not found in ../shared/data/mnist"
    zcat "$MNIST/train-images-idx3-ubyte.gz" | tensor import idx > train.tz
    tensor export npy train.tz > train.npy
    run npy_load train.npy "print(a.shape, a.dtype)"
    [ "$output" = "(60000, 28, 28) uint8" ]
    zcat "$MNIST/train-images-idx3-ubyte.gz" | tail -c +17 | cmp - <(tail -c $((60000 * 784)) train.npy)
    zcat "$MNIST/train-labels-idx1-ubyte.gz" | tensor import idx | tensor export npy > lab.npy
    run npy_load lab.npy "print(a.shape, list(np.bincount(a)))"
    [ "$output" = "(60000,) [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]" ]
    # the man page example
    tensor head -n 100 train.tz | tensor tile > digits.png
    run $PY "$BATS_FILE_TMPDIR/png.py" digits.png
    [ "${lines[0]}" = "289 289 8" ]
}

@test "examples/data/mnist-2k.tz is the first 2000 MNIST training images" {
    [ -f "$MNIST/train-images-idx3-ubyte.gz" ] || skip "MNIST not found in ../shared/data/mnist"
    D="$BATS_TEST_DIRNAME/../examples/data"
    tensor export npy "$D/mnist-2k.tz" | tail -c $((2000 * 784)) > a
    zcat "$MNIST/train-images-idx3-ubyte.gz" | tail -c +17 | head -c $((2000 * 784)) | cmp - a
    tensor export npy "$D/mnist-2k-labels.tz" | tail -c 2000 > b
    zcat "$MNIST/train-labels-idx1-ubyte.gz" | tail -c +9 | head -c 2000 | cmp - b
}

@test "import idx: malformed inputs" {
    run --separate-stderr tensor import idx < /dev/null
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: empty input" ]
    printf '\0\0\10' > t1
    run --separate-stderr tensor import idx t1
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: truncated header" ]
    printf '\1\0\10\1\0\0\0\1x' > t2
    run --separate-stderr tensor import idx t2
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: bad magic 01000801 (not an IDX file)" ]
    printf '\0\0\12\1\0\0\0\1x' > t3
    run --separate-stderr tensor import idx t3
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: unknown element type 0x0a" ]
    printf '\0\0\10\6' > t4
    run --separate-stderr tensor import idx t4
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: 6 dimensions (1 to 5 supported)" ]
    printf '\0\0\10\2\0\0\0\3\0\0\0\2abcde' > t5
    run --separate-stderr tensor import idx t5
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: truncated data: ends in record 3 of 3" ]
    printf '\0\0\10\2\0\0\0\2\0\0\0\2abcde' > t6
    run --separate-stderr tensor import idx t6
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: trailing data after 2 records" ]
    printf '\0\0\10\2\0\0\0\2\0\0\0\0' > t7
    run --separate-stderr tensor import idx t7
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: dimension 1 is 0" ]
    printf '\0\0\10\2\0\0\0\1\10\0\0\1' > t8
    run --separate-stderr tensor import idx t8
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: idx: record shape [134217729] not supported: size limit exceeded" ]
}

# ---- CSV / TSV --------------------------------------------------------------

@test "csv: f32 round trip is text-identical and bit-exact" {
    printf '0.1,-0,1e-38,3.4028235e+38\n-1.1754944e-38,1.4013e-45,16777216,-2.5\n1,nan,inf,-inf\n' > a.csv
    tensor import csv a.csv > a.tz
    tensor export csv a.tz > b.csv
    cmp a.csv b.csv
    # bits equal numpy's float32 parse of the text
    tensor export npy a.tz > a.npy
    run $PY -c "import numpy as np
a = np.load('a.npy'); r = np.loadtxt('a.csv', delimiter=',', dtype=np.float32)
print(a.dtype, a.shape, a.view('u4').tolist() == r.view('u4').tolist() or
      (np.isnan(a) == np.isnan(r)).all() and (a.view('u4')[~np.isnan(a)] == r.view('u4')[~np.isnan(r)]).all())"
    [ "$output" = "float32 (3, 4) True" ]
    # other spellings read to the same bits and print canonically
    printf '1.00000000,  -0.0 , 0.1000000015, 3.40282347e38\n' | tensor import csv | tensor export csv > c.csv
    [ "$(cat c.csv)" = "1,-0,0.1,3.4028235e+38" ]
    # random floats: text -> tz -> text -> tz is a fixed point, values exact
    $PY -c "import numpy as np
x = np.random.default_rng(3).standard_normal((50, 7)).astype(np.float32) * np.float32(1e3)
np.save('x.npy', x)"
    tensor import npy x.npy | tensor export csv > x.csv
    tensor import csv x.csv | tensor export csv | cmp - x.csv
    tensor import csv x.csv | tensor export npy > y.npy
    run $PY -c "import numpy as np; print(np.array_equal(np.load('x.npy').view('u4'), np.load('y.npy').view('u4')))"
    [ "$output" = "True" ]
}

@test "csv/tsv: f64 and integer dtypes, --header, tsv" {
    printf '0.1,1e-300,-2.2250738585072014e-308\n' > d.csv
    tensor import csv --dtype f64 d.csv | tensor export csv | cmp - d.csv
    printf -- '-9223372036854775808,9223372036854775807\n0,-1\n' > i.csv
    tensor import csv --dtype i64 i.csv | tensor export csv | cmp - i.csv
    printf 'a\tb\n255\t0\n7\t8\n' > u.tsv
    tensor import tsv --dtype u8 --header u.tsv > u.tz
    run tensor info u.tz
    [[ "$output" == *"u8"* ]] && [[ "$output" == *"[2] per record"* ]] && [[ "$output" == *"records:    2"* ]]
    run tensor export tsv u.tz
    [ "$output" = "$(printf '255\t0\n7\t8')" ]
    # CRLF line ends are accepted
    printf '1,2\r\n3,4\r\n' | tensor import csv | tensor export csv > crlf.csv
    [ "$(cat crlf.csv)" = "$(printf '1,2\n3,4')" ]
}

@test "csv: a stream of many records in bounded batches keeps order" {
    seq 1 30000 | awk '{print $1 "," (-$1)}' > big.csv
    tensor import csv --dtype i32 big.csv | tensor export csv | cmp - big.csv
}

@test "csv: malformed inputs" {
    printf '1,2,3\n4,5\n' > a
    run --separate-stderr tensor import csv a
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 2: 2 columns, expected 3" ]
    printf '1,x,3\n' > b
    run --separate-stderr tensor import csv b
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 2: 'x' is not a number" ]
    printf '1,,3\n' > c
    run --separate-stderr tensor import csv c
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 2: empty field" ]
    printf '1\n\n2\n' > d
    run --separate-stderr tensor import csv d
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 2: empty line" ]
    printf '300\n' > e
    run --separate-stderr tensor import csv --dtype u8 e
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 1: '300' is out of range for u8" ]
    printf '1.5\n' > f
    run --separate-stderr tensor import csv --dtype i32 f
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 1: '1.5' is not an integer" ]
    printf '1e39\n' > g
    run --separate-stderr tensor import csv g
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 1: '1e39' is out of range for f32" ]
    printf '1 2\n' > h
    run --separate-stderr tensor import csv h
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: line 1, column 1: '1 2' is not a number" ]
    printf '1,2\n' > i
    run --separate-stderr tensor import tsv i
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: tsv: line 1, column 1: '1,2' is not a number" ]
    run --separate-stderr tensor import csv < /dev/null
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: no data" ]
    printf 'a,b\n' > j
    run --separate-stderr tensor import csv --header j
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: csv: no data" ]
}

# ---- npy --------------------------------------------------------------------

@test "npy: every dtype, both byte orders, Fortran order and v2 headers round-trip" {
    run $PY - <<'EOF'
import numpy as np, subprocess, io
rng = np.random.default_rng(1)
bad = []
def rt(a, version=None):
    with open('x.npy', 'wb') as f:
        np.lib.format.write_array(f, a, version=version)
    tz = subprocess.run(['tensor', 'import', 'npy', 'x.npy'], capture_output=True, check=True).stdout
    out = subprocess.run(['tensor', 'export', 'npy'], input=tz, capture_output=True, check=True).stdout
    return np.load(io.BytesIO(out))
for dt in ['|u1', '|i1', '<u2', '<i2', '<i4', '<i8', '<f4', '<f8',
           '>u2', '>i2', '>i4', '>i8', '>f4', '>f8']:
    a = (rng.standard_normal((5, 3, 2)) * 100).astype(dt)
    for arr, v in ((a, None), (np.asfortranarray(a), None), (a, (2, 0)), (a, (3, 0))):
        b = rt(arr, v)
        if not (b.shape == a.shape and b.dtype == a.dtype.newbyteorder('=') and np.array_equal(a, b)):
            bad.append((dt, v, arr.flags.f_contiguous))
b = rt(np.arange(7, dtype='<f4'))
if b.shape != (7,) or list(b) != list(range(7)): bad.append('rank0')
b = rt(np.zeros((0, 4), 'f4'))
if b.shape != (0, 4): bad.append('empty')
b = rt(np.array([True, False]))
if b.dtype != np.uint8 or list(b) != [1, 0]: bad.append('bool')
print(bad)
EOF
    [ "$status" -eq 0 ] && [ "$output" = "[]" ]
}

@test "npy: the header is the same on a pipe (spooled) and on a file (patched)" {
    $PY -c "import numpy as np; np.save('a.npy', np.arange(24, dtype='<i4').reshape(2, 3, 4))"
    tensor import npy a.npy > a.tz
    tensor export npy a.tz > file.npy
    tensor export npy a.tz | cat > pipe.npy
    cmp file.npy pipe.npy
    # appended output cannot be patched and is spooled too
    printf 'x' > app.npy
    tensor export npy a.tz >> app.npy
    tail -c +2 app.npy | cmp - file.npy
    run npy_load file.npy "print(a.shape, a.dtype, a.sum())"
    [ "$output" = "(2, 3, 4) int32 276" ]
    [ $(( $(od -An -tu2 -j8 -N2 file.npy) % 64 )) -eq 54 ]
}

@test "npy: malformed inputs" {
    run --separate-stderr tensor import npy < /dev/null
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: empty input" ]
    printf 'NUMPY\1\0xxxxxxxx' > a
    run --separate-stderr tensor import npy a
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: not a .npy file (bad magic)" ]
    mk() { $PY -c "import sys
d = sys.argv[1].encode(); h = b'\x93NUMPY\x01\x00' + bytes([len(d) & 255, len(d) >> 8]) + d
open(sys.argv[2], 'wb').write(h + bytes.fromhex(sys.argv[3]))" "$1" "$2" "${3:-}"; }
    mk "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }" b
    run --separate-stderr tensor import npy b
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: unsupported dtype '<c8'" ]
    mk "{'descr': '<f4', 'fortran_order': False, }" c
    run --separate-stderr tensor import npy c
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: bad header: missing descr, fortran_order or shape" ]
    mk "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }" d
    run --separate-stderr tensor import npy d
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: bad header: fortran_order is not True or False" ]
    mk "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" e 0000803f
    run --separate-stderr tensor import npy e
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: truncated data: ends in record 2 of 2" ]
    mk "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" f 0000803f00
    run --separate-stderr tensor import npy f
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: trailing data after 1 records" ]
    mk "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6), }" g
    run --separate-stderr tensor import npy g
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: more than 5 dimensions" ]
    mk "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 0), }" h
    run --separate-stderr tensor import npy h
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: dimension 1 is 0" ]
    mk "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}" i
    run --separate-stderr tensor import npy i
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: bad header: unknown key 'x'" ]
    printf '\223NUMPY\011\000\000\000' > j
    run --separate-stderr tensor import npy j
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: npy: unsupported format version 9.0" ]
}

# ---- images -----------------------------------------------------------------

@test "pgm: P5 (8 and 16 bit) and P2 import; pgm export reproduces P5 bytes" {
    $PY - <<'EOF'
import numpy as np
rng = np.random.default_rng(5)
a = rng.integers(0, 256, (3, 4, 5)).astype('u1')
with open('a.pgm', 'wb') as f:
    for im in a: f.write(b'P5\n5 4\n255\n' + im.tobytes())
np.save('a.npy', a)
b = rng.integers(0, 65536, (4, 3)).astype('>u2')
open('b.pgm', 'wb').write(b'P5\n3 4\n65535\n' + b.tobytes())
np.save('b.npy', b.astype('<u2'))
with open('c.pgm', 'w') as f:
    f.write('P2\n# a comment\n5 4\n15\n' + '\n'.join(' '.join(str(v % 16) for v in row) for row in a[0]) + '\n')
np.save('c.npy', a[0:1] % 16)
EOF
    tensor import pgm a.pgm > a.tz
    tensor export pgm a.tz | cmp - a.pgm
    tensor export npy a.tz | cmp - <(tensor import npy a.npy | tensor export npy)
    tensor import pgm b.pgm | tensor export pgm | cmp - b.pgm
    tensor import pgm b.pgm | tensor export npy > b2.npy
    run $PY -c "import numpy as np; print(np.array_equal(np.load('b.npy'), np.load('b2.npy')[0]))"
    [ "$output" = "True" ]
    tensor import pgm c.pgm | tensor export npy > c2.npy
    run $PY -c "import numpy as np; print(np.array_equal(np.load('c.npy'), np.load('c2.npy')))"
    [ "$output" = "True" ]
}

@test "pgm: malformed inputs" {
    run --separate-stderr tensor import pgm < /dev/null
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: empty input" ]
    printf 'P6\n1 1\n255\nabc' > a
    run --separate-stderr tensor import pgm a
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 1: not a PGM image (expected P5 or P2)" ]
    printf 'P5\n2 2\n255\nabc' > b
    run --separate-stderr tensor import pgm b
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 1: truncated raster (3 of 4 samples)" ]
    printf 'P5\n1 1\n255\naP5\n2 1\n255\nab' > c
    run --separate-stderr tensor import pgm c
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 2 is 2x1 with maxval 255, unlike image 1 (1x1, maxval 255)" ]
    printf 'P2\n2 1\n9\n3 10\n' > d
    run --separate-stderr tensor import pgm d
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 1: sample 10 exceeds maxval 9" ]
    printf 'P5\n2 x\n' > e
    run --separate-stderr tensor import pgm e
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 1: bad height" ]
    printf 'P5\n2 1\n70000\n' > f
    run --separate-stderr tensor import pgm f
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: import: pgm: image 1: maxval 70000 outside 1..65535" ]
}

@test "png export: pixels decode to the record; scaling of floats" {
    printf '0,64,128,255,10,20\n' | tensor import csv --dtype u8 > u.tz
    tensor export png --shape 2x3 u.tz > u.png
    run $PY "$BATS_FILE_TMPDIR/png.py" u.png
    [ "${lines[0]}" = "3 2 8" ] && [ "${lines[1]}" = "0 64 128" ] && [ "${lines[2]}" = "255 10 20" ]
    # floats: [0,1] clamped by default, own range with --scale minmax
    printf -- '-1,0,0.5,1,2,0.25\n' | tensor import csv > f.tz
    tensor export png --shape 3x2 f.tz > f.png
    run $PY "$BATS_FILE_TMPDIR/png.py" f.png
    [ "${lines[0]}" = "2 3 8" ] && [ "${lines[1]}" = "0 0" ] && [ "${lines[2]}" = "128 255" ] && [ "${lines[3]}" = "255 64" ]
    tensor export png --shape 3x2 --scale minmax f.tz > m.png
    run $PY "$BATS_FILE_TMPDIR/png.py" m.png
    [ "${lines[1]}" = "0 85" ] && [ "${lines[2]}" = "128 170" ] && [ "${lines[3]}" = "255 106" ]
    # pgm export of the same values with the same scaling
    tensor export pgm --shape 3x2 f.tz | tail -c 6 | od -An -tu1 | tr -s ' ' > g
    [ "$(cat g)" = " 0 0 128 255 255 64" ]
}

@test "png/pgm export: errors" {
    printf '1,2\n3,4\n' | tensor import csv > a.tz
    run --separate-stderr tensor export png --shape 1x2 a.tz
    [ "$status" -eq 1 ]
    [ "$stderr" = "tensor: export: png holds one image and the input has more than one record; use 'tensor tile' for a grid, or 'tensor head' and 'tensor slice'" ]
    run --separate-stderr tensor export png a.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: export: records are f32 [2], not images; give --shape HxW" ]
    run --separate-stderr tensor export pgm --shape 3x3 a.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: export: --shape 3x3 has 9 pixels, records have 2" ]
    run --separate-stderr tensor export pgm --shape 3y3 a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: invalid --shape '3y3': expected HxW, e.g. 28x28" ]
    run --separate-stderr tensor export csv --scale minmax a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: export: --shape and --scale apply to pgm and png only" ]
    run --separate-stderr tensor export gif a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: export: unknown format 'gif' (csv, tsv, npy, pgm or png)" ]
    run --separate-stderr tensor export csv a.tz > /dev/full
    run bash -c 'tensor export csv a.tz > /dev/full'
    [ "$status" -eq 1 ]
}

@test "export --name picks a tensor of a model file; errors list the tensors" {
    printf '1,2,3\n4,5,6\n' | tensor import csv > d.tz
    tensor stats --save st.tz d.tz > /dev/null
    run tensor export csv --name std st.tz
    [ "$status" -eq 0 ] && [ "$output" = "$(printf '1.5\n1.5\n1.5')" ]
    run --separate-stderr tensor export csv --name nope st.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: export: no tensor 'nope' in st.tz (tensors: mean, std, min, max)" ]
    run --separate-stderr tensor export csv st.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: export: the input holds several tensors; choose one with --name (tensors: mean, std, min, max)" ]
    run --separate-stderr tensor export npy --name max < st.tz
    [ "$status" -eq 0 ]
}

# ---- tile -------------------------------------------------------------------

@test "tile: grid layout, separators and tile contents" {
    # 10 records of shape [2 3] (via --shape), values r*10+i
    $PY -c "import numpy as np; np.save('t.npy', (np.arange(10)[:, None] * 10 + np.arange(6)).astype('u1'))"
    tensor import npy t.npy > t.tz
    tensor tile --shape 2x3 t.tz > t.png
    run $PY - <<'EOF'
import subprocess, numpy as np
out = subprocess.run(['/usr/bin/python3', __import__('os').environ['BATS_FILE_TMPDIR'] + '/png.py', 't.png'],
                     capture_output=True, text=True, check=True).stdout.split('\n')
w, h, d = map(int, out[0].split())
img = np.array([list(map(int, l.split())) for l in out[1:1 + h]])
ok = (w, h) == (4 * 4 - 1, 3 * 3 - 1)      # 4 columns, 3 rows of 2x3 tiles
for j in range(12):
    r, c = divmod(j, 4)
    tile = img[r * 3:r * 3 + 2, c * 4:c * 4 + 3]
    want = np.full((2, 3), 255) if j >= 10 else (j * 10 + np.arange(6)).reshape(2, 3)
    ok &= (tile == want).all()
ok &= (img[2, :] == 255).all() and (img[:, 3] == 255).all()
print(ok)
EOF
    [ "$output" = "True" ]
    tensor tile --shape 2x3 --cols 5 t.tz > c.png
    run $PY "$BATS_FILE_TMPDIR/png.py" c.png
    [ "${lines[0]}" = "19 5 8" ]
    tensor tile --shape 2x3 --rows 1 --max 3 t.tz > r.png
    run $PY "$BATS_FILE_TMPDIR/png.py" r.png
    [ "${lines[0]}" = "11 2 8" ] && [ "${lines[1]}" = "0 1 2 255 10 11 12 255 20 21 22" ]
}

@test "tile --transpose: one tile per column, min-max scaled with --name" {
    # X (4, 3): column j is [j, j+1, j+2, j+3]*(j+1); tiles of 4 = 2x2
    printf '0,1,2\n1,4,9\n2,7,16\n3,10,23\n' | tensor import csv > x.tz
    tensor tile --transpose --scale minmax x.tz > x.png
    run $PY "$BATS_FILE_TMPDIR/png.py" x.png
    [ "${lines[0]}" = "5 5 8" ] && [ "${lines[1]}" = "0 85 255 0 85" ] && [ "${lines[2]}" = "170 255 255 170 255" ]
    # a model tensor: --name defaults to minmax
    tensor stats --save st.tz x.tz > /dev/null
    tensor tile --name mean --transpose --shape 1x3 st.tz > m.png
    run $PY "$BATS_FILE_TMPDIR/png.py" m.png
    [ "${lines[0]}" = "3 1 8" ] && [ "${lines[1]}" = "0 93 255" ]
}

@test "tile: errors" {
    printf '1,2,3\n' | tensor import csv > a.tz
    run --separate-stderr tensor tile a.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: tile: tiles have 3 values, not a square; give --shape HxW" ]
    run --separate-stderr tensor tile --shape 2x2 a.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: tile: --shape 2x2 has 4 pixels, tiles have 3 values" ]
    run --separate-stderr tensor tile --rows 0 a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: invalid --rows '0': must be in [1, 10000]" ]
    run --separate-stderr tensor tile --scale log a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: invalid --scale 'log': expected unit or minmax" ]
    run --separate-stderr tensor tile --bogus a.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: tile: unknown option '--bogus'" ]
    run --separate-stderr tensor import
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: import: missing FORMAT (idx, csv, tsv, npy or pgm)" ]
    run --separate-stderr tensor import csv --dtype f16
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: import: unknown --dtype 'f16' (u8 i8 u16 i16 i32 i64 f32 f64)" ]
    run --separate-stderr tensor import idx --header
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: import: --header applies to csv and tsv only" ]
}

@test "help on stdout with exit 0" {
    for s in import export tile; do
        run --separate-stderr tensor $s --help
        [ "$status" -eq 0 ] && [ -z "$stderr" ] && [[ "$output" == "Usage: tensor $s"* ]]
    done
}

@test "tile: [H W 3] records as a colour PNG" {
    python3 -c '
import struct, sys
hdr = struct.pack(">HBB", 0, 8, 4) + struct.pack(">IIII", 2, 3, 4, 3)
body = bytes([255, 0, 0] * 12 + [0, 0, 255] * 12)
sys.stdout.buffer.write(hdr + body)' > rgb.idx
    tensor import idx rgb.idx > rgb.tz
    tensor tile --cols 2 rgb.tz > rgb.png
    # PNG IHDR: width 9 (4 + 1 + 4), height 3, 8 bits, colour type 2 (RGB)
    [ "$(od -An -tx1 -j 16 -N 10 rgb.png | tr -d ' \n')" = 00000009000000030802 ]
    python3 -c '
import zlib, struct
d = open("rgb.png", "rb").read()
i, idat = 8, b""
while i < len(d):
    n, t = struct.unpack(">I4s", d[i:i + 8])
    if t == b"IDAT":
        idat += d[i + 8:i + 8 + n]
    i += 12 + n
raw, w, bpp, rows, prev = zlib.decompress(idat), 27, 3, [], bytes(27)
for y in range(3):
    f, line = raw[y * 28], bytearray(raw[y * 28 + 1:y * 28 + 28])
    for x in range(w):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        p = a + b - c
        pr = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
        line[x] = (line[x] + [0, a, b, (a + b) // 2, pr][f]) % 256
    rows.append(bytes(line)); prev = rows[-1]
red, white, blue = bytes([255, 0, 0]), bytes([255] * 3), bytes([0, 0, 255])
for r in rows:
    assert r == red * 4 + white + blue * 4, r
'
}

