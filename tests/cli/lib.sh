# What the command-line tests share (sourced). Before expect_refused, set
# refused_cmd (the tool and the arguments every run takes), refused_name
# (how messages name it), refused_file (a file a refused run must not
# create) and refused_what (what that file is, for the message); work is
# the test's scratch directory.
failed=0

fail() { echo "FAIL: $*" >&2; failed=1; }

# expect_refused WORDS-IN-MESSAGE -- ARGS...: exit 2, the message has the
# words (naming the option and the value), nothing on stdout, and
# refused_file not created.
expect_refused() {
    local want=$1; shift; shift
    "${refused_cmd[@]}" "$@" >"$work/stdout" 2>"$work/stderr"
    local rc=$?
    local what="$refused_name $*"
    [ "$rc" = 2 ] || fail "$what: exit $rc, expected 2"
    grep -qF -- "$want" "$work/stderr" ||
        fail "$what: message lacks '$want': $(cat "$work/stderr")"
    [ -s "$work/stdout" ] && fail "$what: wrote to stdout"
    [ -e "$refused_file" ] && fail "$what: created $refused_what"
    rm -f "$refused_file"
}
