# tests/e2e/lib.sh: helpers for tests/e2e/run (sourced, not run).
#
# Results: check/pass/fail/skip print one line per check and count them.
# Containers: in_node runs a command inside a booted container (nsenter into
# all its namespaces; the command stays in the harness's cgroup, so use it
# for client commands - systemctl, busctl, journalctl, dpkg, ip - not for
# long-running payloads, which are units). Waits: wait_until, bounded.

E2E_PASS=0
E2E_FAIL=0
E2E_SKIP=0
E2E_FAILED=()

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
note() { echo "       $*"; }
step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

pass() { echo "PASS  $*"; E2E_PASS=$((E2E_PASS + 1)); }
fail() {
    echo "FAIL  $*"
    E2E_FAIL=$((E2E_FAIL + 1))
    E2E_FAILED+=("$*")
}
# skip REASON: a check that cannot run here. Under CI=true that is a
# failure: a privileged tier never passes by skipping.
skip() {
    if [[ ${CI:-} == true ]]; then
        fail "$* (CI=true: not skipping)"
    else
        echo "SKIP  $*"
        E2E_SKIP=$((E2E_SKIP + 1))
    fi
}

# check DESCRIPTION CMD...: PASS if CMD succeeds, FAIL with its output if not.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what"
        [[ -n $out ]] && printf '%s\n' "$out" | tail -15 | sed 's/^/       | /'
    fi
}

# wait_until TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds;
# false after TIMEOUT_S seconds.
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        (( $(date +%s%N) < deadline )) || return 1
        sleep 0.2
    done
}

# in_node NODE CMD...: run CMD inside the container NODE, with a clean
# environment. stdin is passed through.
in_node() {
    local node=$1
    shift
    local leader=${E2E_LEADER[$node]:?no leader for $node}
    timeout 60 nsenter -t "$leader" -a \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 "$@"
}

# put_file NODE PATH MODE < content: write a file inside the container.
put_file() {
    in_node "$1" sh -c "umask 077; cat > '$2.e2e-tmp' && chmod $3 '$2.e2e-tmp' && mv '$2.e2e-tmp' '$2'"
}

# unit_prop NODE UNIT PROPERTY: one property's value.
unit_prop() { in_node "$1" systemctl show -p "$3" --value "$2"; }

# tool_missing CMD...: the first command not on PATH, if any.
tool_missing() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "$t"; return 0; }
    done
    return 1
}

# check_sh DESCRIPTION 'SHELL CODE': like check, for code evaluated in this
# shell (so it can use these functions and the harness's arrays).
check_sh() {
    local what=$1 out
    if out=$(eval "$2" 2>&1); then
        pass "$what"
    else
        fail "$what"
        [[ -n $out ]] && printf '%s\n' "$out" | tail -15 | sed 's/^/       | /'
    fi
}
