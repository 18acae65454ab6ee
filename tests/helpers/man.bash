# man.bash - running the EXAMPLES of man pages at a small size and
# checking pages against --help (stack_man.bats, joint_man.bats).

MAN="$BATS_TEST_DIRNAME/../man"

# man_examples PAGE: the commands of PAGE's EXAMPLES section, one a line
# (.Dl lines and .Bd -literal blocks; a line ending in | or \ continues).
man_examples() {
    awk '
    function emit(l) {
        gsub(/\\&/, "", l); gsub(/\\-/, "-", l)
        sub(/^[ \t]+/, "", l)
        if (l ~ /\\$/) { sub(/\\$/, "", l); acc = acc l; return }
        if (l ~ /\|$/) { acc = acc l " "; return }
        print acc l; acc = ""
    }
    /^\.Sh / { ex = ($2 == "EXAMPLES"); next }
    !ex { next }
    /^\.Bd -literal/ { lit = 1; next }
    /^\.Ed/ { lit = 0; next }
    /^\.Dl / { sub(/^\.Dl /, ""); emit($0); next }
    lit && !/^\./ { emit($0) }
    ' "$1"
}

# small: the same commands at test size (fewer units, epochs, steps, AIS
# runs and betas; options written later on a command line win, so the AIS
# defaults are overridden by inserting options right after the name)
small() {
    sed -E -e 's/-H 500( |$)/-H 24\1/g' -e 's/-H 1000( |$)/-H 12\1/g' \
        -e 's/-H 2000( |$)/-H 16\1/g' -e 's/-H 200( |$)/-H 20\1/g' \
        -e 's/-H 100( |$)/-H 10\1/g' -e 's/(^| )-e [0-9]+/\1-e 2/g' \
        -e 's/--steps [0-9]+/--steps 20/g' -e 's/--every 100/--every 5/g' \
        -e 's/-n 100( |$)/-n 6\1/g' -e 's/--samples 50/--samples 3/g' \
        -e 's/--betas 5000/--betas 300/g' \
        -e 's/(^|[|] )ais-estimate /\1ais-estimate --runs 10 --betas 300 /g' \
        -e 's/(^|[|] )(rbm-train|stack|ais-estimate|encode|rbm-sample) /\1\2 -q /g'
}

# run_cmds: run the commands on stdin (one a line) in the current
# directory, each with pipefail, its output in out.N; a command with
# --stop-after-batches must exit 143 (as SIGTERM), every other with 0.
# Sets NCMD to the number run.
run_cmds() {
    NCMD=0
    local cmd st want
    rm -f out.* err.*
    while IFS= read -r cmd; do
        NCMD=$((NCMD + 1))
        want=0
        [[ "$cmd" == *--stop-after-batches* ]] && want=143
        st=0
        bash -o pipefail -c "$cmd" > "out.$NCMD" 2> "err.$NCMD" || st=$?
        if [ "$st" -ne "$want" ]; then
            echo "command $NCMD exited with $st (expected $want): $cmd"
            cat "err.$NCMD"
            return 1
        fi
    done
}

# help_longopts TOOL: the long options of TOOL --help (option lines start
# with 2 or 6 spaces and a dash)
help_longopts() {
    "$1" --help | grep -oE '^  (    )?(-[a-zA-Z], )?--[a-z][a-z-]*' |
        grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# in_page PAGE --name: PAGE has an item for the option (.It Fl -name, or
# .It Fl x , -name)
in_page() { grep -E '^\.It ' "$1" | grep -qE "(Fl|,) -${2#--}( |$)"; }

# check_page TOOL PAGE: PAGE and TOOL --help list the same options, and
# each "default: N" of --help is the man page's "Default: N" of that item
check_page() {
    local tool=$1 page=$2
    missing=""
    for o in $(help_longopts $tool); do
        in_page "$page" "$o" || missing="$missing $o"
    done
    [ -z "$missing" ] || { echo "not in $page:$missing"; false; }
    extra=""
    for o in $(sed -n '/^\.Sh OPTIONS/,/^\.Sh /p' "$page" | grep '^\.It Fl' |
               grep -oE '(Fl|,) -[a-z][a-z-]*' | sed 's/^.* -/--/'); do
        help_longopts $tool | grep -qx -- "$o" || extra="$extra $o"
    done
    [ -z "$extra" ] || { echo "in $page but not in --help:$extra"; false; }
    # the first number of each "default: N" of --help is the man page's
    # "Default: N" in that option's item
    "$tool" --help | awk '
        /^  -/ || /^      -/ {
            if (o != "") print o "\t" t
            o = ""; t = $0
            if (match($0, /--[a-z][a-z-]*/)) o = substr($0, RSTART, RLENGTH)
            next
        }
        /^          / { t = t " " $0; next }
        { if (o != "") print o "\t" t; o = "" }
        END { if (o != "") print o "\t" t }' > entries.txt
    bad=""
    n=0
    while IFS="$(printf '\t')" read -r o text; do
        d=$(printf '%s\n' "$text" |
            sed -n -e 's/.*default: \([0-9][0-9.e+-]*[0-9]\).*/\1/p' \
                   -e 's/.*default: \([0-9]\)[ );].*/\1/p' | head -n 1)
        [ -n "$d" ] || continue
        n=$((n + 1))
        block=$(awk -v o=" ${o#-} " '
            /^\.It / { inb = index($0 " ", o) > 0; next }
            /^\.El/ { inb = 0 }
            inb { printf "%s ", $0 }' "$page")
        re="Default: ${d//./\\.}([^0-9.]|\\.([^0-9]|$)|$)"
        [[ "$block" =~ $re ]] || bad="$bad $o=$d"
    done < entries.txt
    [ "$n" -ge 10 ]
    [ -z "$bad" ] || { echo "defaults of --help not in $page:$bad"; false; }
}
