#!/usr/bin/env bats
# tensor bow / words: exact counts on a small corpus against a python
# reference, vocabulary order, words inverting bow, and the errors.

bats_require_minimum_version 1.5.0
PY=/usr/bin/python3

setup() {
    cd "$BATS_TEST_TMPDIR"
    cat > corpus.txt <<'EOF'
The cat sat on the mat.
A dog, a cat; and THE bird!

Birds fly over the dog's house -- the cat-flap is shut.
café Café CAFÉ 42 x42 42x
EOF
}

# Reference tokenizer and counts in python (independent of the C code).
ref() {
    $PY - "$@" <<'EOF'
import re, sys, collections
docs = open('corpus.txt', 'rb').read().split(b'\n')
if docs and docs[-1] == b'': docs.pop()
tok = lambda d: [t.decode('utf-8', 'surrogateescape') for t in re.findall(rb'[A-Za-z0-9\x80-\xff]+', d.lower())]
cnt = collections.Counter(t for d in docs for t in tok(d))
vocab = sorted(cnt, key=lambda w: (-cnt[w], w.encode('utf-8', 'surrogateescape')))[:int(sys.argv[1])]
col = {w: i for i, w in enumerate(vocab)}
if sys.argv[2] == 'vocab':
    print('\n'.join(vocab))
else:
    for d in docs:
        row = [0] * len(vocab)
        for t in tok(d):
            if t in col: row[col[t]] += 1
        print(','.join(map(str, row)))
EOF
}

@test "bow: counts and vocabulary order equal the reference" {
    tensor bow --save-vocab v.txt corpus.txt > b.tz
    diff v.txt <(ref 2000 vocab)
    tensor export csv b.tz | diff - <(ref 2000 rows)
    # the most frequent first, ties in byte order
    [ "$(head -n 4 v.txt | tr '\n' ' ')" = "the cat a café " ]
    run tensor info b.tz
    [[ "$output" == *"f32"* ]] && [[ "$output" == *"records:    5"* ]]
    [[ "$output" == *"text.vocab_size = $(wc -l < v.txt)"* ]]
}

@test "bow: --max-words, --min-count and stdin (spooled) give the same as a file" {
    tensor bow --max-words 5 --save-vocab v5.txt < corpus.txt > b5.tz
    diff v5.txt <(ref 5 vocab)
    tensor export csv b5.tz | diff - <(ref 5 rows)
    cat corpus.txt | tensor bow --min-count 2 --save-vocab v2.txt | tensor export csv > m.csv
    [ "$(tr '\n' ' ' < v2.txt)" = "the cat a café dog " ]
    tensor export csv b5.tz | cmp - m.csv
}

@test "bow --vocab: counts only the listed words, in the listed order" {
    printf 'mat\nthe\nzebra\ncafé\n' > my.txt
    run tensor bow --vocab my.txt corpus.txt
    [ "$status" -eq 0 ]
    tensor bow --vocab my.txt corpus.txt | tensor export csv > r.csv
    [ "$(cat r.csv)" = "$(printf '1,2,0,0\n0,1,0,0\n0,0,0,0\n0,2,0,0\n0,0,0,2')" ]
}

@test "words: inverts bow (top words of each row, by count then column)" {
    tensor bow --save-vocab v.txt corpus.txt > b.tz
    run tensor words --vocab v.txt -n 3 b.tz
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "the cat mat" ]
    [ "${lines[1]}" = "a the cat" ]
    [ "${#lines[@]}" -eq 4 ]      # run drops the empty line of the blank document
    tensor words --vocab v.txt b.tz > all.txt
    [ "$(sed -n 3p all.txt)" = "" ]
    # every word of a document is listed, each once, heaviest first
    tensor words --vocab v.txt -n 1000 b.tz > w.txt
    run $PY - <<'EOF'
import re, collections
docs = open('corpus.txt', 'rb').read().split(b'\n')[:-1]
vocab = open('v.txt', 'rb').read().split(b'\n')[:-1]
col = {w: i for i, w in enumerate(vocab)}
out = open('w.txt', 'rb').read().split(b'\n')[:-1]
ok = len(out) == len(docs)
for d, o in zip(docs, out):
    c = collections.Counter(re.findall(rb'[a-z0-9\x80-\xff]+', d.lower()))
    want = sorted(c, key=lambda w: (-c[w], col[w]))
    ok &= o.split() == want
print(ok)
EOF
    [ "$output" = "True" ]
    # words reads the vocabulary from the stream's text.vocab attribute too
    tensor words -n 3 b.tz | cmp - <(tensor words --vocab v.txt -n 3 b.tz)
}

@test "words: weights from a float stream, ties by column, non-positive left out" {
    printf 'w0\nw1\nw2\nw3\n' > v.txt
    printf '0.5,2,0.5,-1\n0,0,0,0\n3,nan,3,1e-30\n' | tensor import csv > x.tz
    run tensor words --vocab v.txt -n 3 x.tz
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf 'w1 w0 w2\n\nw0 w2 w3')" ]
}

@test "bow/words: errors" {
    printf 'a\n\nb\n' > e1
    run --separate-stderr tensor bow --vocab e1 corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: e1: line 2: empty line" ]
    printf 'a\nB\n' > e2
    run --separate-stderr tensor bow --vocab e2 corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: e2: line 2: 'B' is not a token (lowercase letters, digits and non-ASCII bytes)" ]
    printf 'a\nb\na\n' > e3
    run --separate-stderr tensor bow --vocab e3 corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: e3: line 3: 'a' repeats line 1" ]
    : > e4
    run --separate-stderr tensor bow --vocab e4 corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: e4: empty vocabulary" ]
    run --separate-stderr tensor bow --vocab nosuch corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: nosuch: No such file or directory" ]
    run --separate-stderr tensor bow < /dev/null
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: empty vocabulary: no word occurs 1 time or more" ]
    run --separate-stderr tensor bow --min-count 9 corpus.txt
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: bow: empty vocabulary: no word occurs 9 times or more" ]
    run --separate-stderr tensor bow --max-words 0 corpus.txt
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: invalid --max-words '0': must be in [1, 16777216]" ]
    printf 'a\nb\n' > v2
    printf '1,2,3\n' | tensor import csv > x.tz
    run --separate-stderr tensor words --vocab v2 x.tz
    [ "$status" -eq 1 ] && [ "$stderr" = "tensor: words: rows have 3 values but the vocabulary has 2 words" ]
    run --separate-stderr tensor words x.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: words: no --vocab FILE, and the input has no text.vocab attribute" ]
    run --separate-stderr tensor words -n 0 --vocab v2 x.tz
    [ "$status" -eq 2 ] && [ "${stderr%%$'\n'*}" = "tensor: invalid -n '0': must be in [1, 1000000]" ]
    run bash -c 'tensor bow corpus.txt > /dev/full'
    [ "$status" -eq 1 ]
    run bash -c 'tensor words -n 2 --vocab v2 < <(printf "1,2\n" | tensor import csv) > /dev/full'
    [ "$status" -eq 1 ]
}

@test "bow/words: help on stdout with exit 0" {
    for s in bow words; do
        run --separate-stderr tensor $s --help
        [ "$status" -eq 0 ] && [ -z "$stderr" ] && [[ "$output" == "Usage: tensor $s"* ]]
    done
}
