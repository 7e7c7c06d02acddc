# shellcheck shell=bash
# Shared helpers for bench/failover and scripts/demo: a throw-away lab of
# network namespaces, and bounded waits / PID-based kills.
#
# Topology made by ns_topology (all names unique per run, see ns_init):
#   <P>sw : bridge br0 with ports port-a, port-b, port-c
#   <P>a  : eth0 198.18.2.11/24   cluster node node-a
#   <P>b  : eth0 198.18.2.12/24   cluster node node-b
#   <P>c  : eth0 198.18.2.13/24   client
#   VIP   : 198.18.2.100/24 (owned by whichever node is active)
#
# Safety rules (DESIGN.md "Network safety"): every veth is created directly
# inside our own namespaces, so nothing ever appears in the root namespace;
# only 198.18.0.0/15 addresses are used; every wait is bounded; processes are
# ended by PID only (ours, or whatever lives in a namespace we created).
#
# Usage:  . scripts/lib/netns.sh; ns_init demo; trap ns_cleanup EXIT INT TERM
#         ns_topology; ns_bg a "$log" cmd...; ns_exec c curl ...

NS_NET=${NS_NET:-198.18.2}
NS_IF=${NS_IF:-eth0}
NS_VIP=${NS_VIP:-$NS_NET.100}
NS_PREFIX=${NS_PREFIX:-}
NS_CREATED=()   # namespaces created by this shell, for ns_cleanup
NS_PIDS=()      # background processes started through ns_bg / ns_track
NS_HOLDERS=()   # PID-1s of private node namespaces (ns_holder_start)

ns_log() { printf '[%(%T)T.%s] %s\n' -1 "${EPOCHREALTIME#*.}" "$*" >&2; }
ns_now() { printf '%s\n' "$EPOCHREALTIME"; }

# ns_init TAG: pick a per-run prefix. The (sub)shell PID keeps concurrent runs apart;
# TAG says who made it when you look at `ip netns list`.
ns_init() {
  NS_PREFIX="hb-${BASHPID}-${1:-lab}-"
}

ns_name() { printf '%s%s\n' "$NS_PREFIX" "$1"; }   # a|b|c|sw -> namespace

ns_addr() {  # a|b|c|vip -> IPv4 address
  case $1 in
    a) echo "$NS_NET.11" ;; b) echo "$NS_NET.12" ;; c) echo "$NS_NET.13" ;;
    vip) echo "$NS_VIP" ;;
    *) echo "ns_addr: unknown node $1" >&2; return 1 ;;
  esac
}

ns_add() {  # create one namespace and remember it for cleanup
  local ns; ns=$(ns_name "$1")
  if [[ $'\n'"$(ip netns list | awk '{print $1}')"$'\n' == *$'\n'"$ns"$'\n'* ]]; then
    echo "ns_add: namespace $ns already exists (stale run with the same PID?)" >&2
    return 1
  fi
  ip netns add "$ns"
  NS_CREATED+=("$ns")
  ip -n "$ns" link set lo up
}

# ns_topology: the bridge "switch", nodes a and b, client c.
ns_topology() {
  [ -n "$NS_PREFIX" ] || ns_init lab
  local n sw
  for n in sw a b c; do ns_add "$n"; done
  sw=$(ns_name sw)
  # No STP and no forwarding delay: ports forward at once, like a dumb switch.
  ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$sw" link set br0 up
  for n in a b c; do
    ip -n "$sw" link add "port-$n" type veth peer name "$NS_IF" netns "$(ns_name "$n")"
    ip -n "$sw" link set "port-$n" master br0 up
    ip -n "$(ns_name "$n")" addr add "$(ns_addr "$n")/24" brd + dev "$NS_IF"
    ip -n "$(ns_name "$n")" link set "$NS_IF" up
  done
}

ns_exec() {  # NODE CMD...: run CMD in NODE's network namespace (foreground)
  local n=$1; shift
  ip netns exec "$(ns_name "$n")" "$@"
}

# ns_bg NODE LOGFILE CMD...: start CMD in the background in NODE's network
# namespace with stdout+stderr to LOGFILE; sets NS_LASTPID. `ip netns exec`
# execs CMD, so the PID is CMD's own.
ns_bg() {
  local n=$1 logf=$2; shift 2
  ip netns exec "$(ns_name "$n")" "$@" </dev/null >>"$logf" 2>&1 &
  NS_LASTPID=$!
  NS_PIDS+=("$NS_LASTPID")
  # no "Killed" job notices when we SIGKILL it on purpose; PIDs are tracked above
  disown "$NS_LASTPID" 2>/dev/null || true
}

ns_track() { NS_PIDS+=("$@"); }

# ns_has_addr NODE ADDR: is ADDR configured on NODE's interface?
ns_has_addr() {
  # captured, not piped into grep -q: under pipefail, grep quitting at the
  # first match can end ip with SIGPIPE and fail the test (64 addresses)
  local have
  have=$(ip -n "$(ns_name "$1")" -o -4 addr show dev "$NS_IF" 2>/dev/null) || return 1
  [[ $have == *" $2/"* ]]
}

# wait_for TIMEOUT_S INTERVAL_S CMD...: poll CMD until it succeeds; 1 on timeout.
wait_for() {
  local timeout=$1 interval=$2; shift 2
  local deadline
  deadline=$(awk -v n="$EPOCHREALTIME" -v t="$timeout" 'BEGIN{printf "%.6f", n+t}')
  while :; do
    "$@" && return 0
    awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN{exit !(n>=d)}' && return 1
    sleep "$interval"
  done
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# kill_pids SIG PID...: signal exactly these PIDs (ignores empty/dead ones).
kill_pids() {
  local sig=$1 p; shift
  # `|| true`: under set -e a failing kill at the end of an && list would exit
  for p in "$@"; do [ -z "$p" ] || kill "-$sig" "$p" 2>/dev/null || true; done
}

# kill_wait TIMEOUT_S PID...: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
kill_wait() {
  local t=$1 p; shift
  kill_pids TERM "$@"
  for p in "$@"; do wait_for "$t" 0.02 eval "! pid_alive $p" || kill_pids KILL "$p"; done
  return 0
}

# pid_tree PID: PID and all its descendants (for CPU/RSS of forking daemons).
pid_tree() {
  local p=$1 c kids=()
  pid_alive "$p" || return 0
  echo "$p"
  read -r -a kids < <(cat /proc/"$p"/task/*/children 2>/dev/null; echo)
  for c in "${kids[@]}"; do pid_tree "$c"; done
}

# ---- private node filesystem (only where a daemon needs it: heartbeat) ----
# ns_holder_start NODE HOSTNAME NSINIT LIFETIME_S SRC:DST...
# Starts a PID-1 (NSINIT, a reaping python script) in new mount+UTS+PID
# namespaces inside NODE's network namespace, with each SRC bind-mounted over
# DST. SIGKILL of that PID-1 kills every process of the node. Sets NS_HOLDER.
ns_holder_start() {
  local n=$1 host=$2 nsinit=$3 life=$4; shift 4
  local script="hostname $host" m p up k
  for m in "$@"; do script+=" && mount --bind ${m%%:*} ${m#*:}"; done
  script+=" && exec /usr/bin/python3 $nsinit $life"
  ip netns exec "$(ns_name "$n")" unshare --mount --uts --pid --fork --mount-proc \
    --propagation private /bin/sh -c "$script" </dev/null >"/tmp/.nsholder-$$-$n.out" 2>&1 &
  up=$!
  NS_PIDS+=("$up")
  p=
  for k in $(seq 1 50); do   # bounded: 5 s
    p=$(cat /proc/"$up"/task/*/children 2>/dev/null | awk '{print $1}')
    [ -n "$p" ] && [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f /usr/bin/python3)" ] && break
    p=; sleep 0.1
  done
  if [ -z "$p" ]; then
    echo "ns_holder_start: node $n namespace did not start ($k tries):" >&2
    cat "/tmp/.nsholder-$$-$n.out" >&2
    rm -f "/tmp/.nsholder-$$-$n.out"
    return 1
  fi
  rm -f "/tmp/.nsholder-$$-$n.out"
  # shellcheck disable=SC2034  # output for the caller
  NS_HOLDER=$p
  NS_HOLDERS+=("$p")
}

# ns_nsx HOLDER CMD...: run CMD inside a private node (net+mnt+uts+pid), clean env.
ns_nsx() {
  local h=$1; shift
  nsenter -t "$h" -m -u -n -p -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C "$@"
}

# pids_in_pidns HOLDER COMM: host PIDs of processes named COMM in HOLDER's PID ns.
pids_in_pidns() {
  local pidns p
  pidns=$(readlink "/proc/$1/ns/pid" 2>/dev/null) || return 0
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$pidns" ] || continue
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && echo "$p"
  done
  return 0
}

# ---- partitions / loss (nft in the switch namespace, never in root) ----
# ns_partition on|off: drop everything between port-a and port-b (client still
# reaches both), i.e. a split brain. Uses a bridge-family table in <P>sw.
ns_partition() {
  local sw; sw=$(ns_name sw)
  if [ "$1" = on ]; then
    ip netns exec "$sw" nft -f - <<'EOF'
table bridge harust_lab {
  chain lab_forward {
    type filter hook forward priority 0; policy accept;
    iifname "port-a" oifname "port-b" drop
    iifname "port-b" oifname "port-a" drop
  }
}
EOF
  else
    ip netns exec "$sw" nft delete table bridge harust_lab 2>/dev/null || true
  fi
}

# ns_cleanup: idempotent; safe to call from traps and more than once.
ns_cleanup() {
  set +e
  local p ns
  # Node PID-1s first: the kernel then kills everything in those PID namespaces.
  for p in "${NS_HOLDERS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${NS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${NS_PIDS[@]}"; do wait_for 1 0.05 eval "! pid_alive $p" >/dev/null 2>&1 || kill -KILL "$p" 2>/dev/null; done
  for ns in "${NS_CREATED[@]}"; do
    # Whatever still runs inside a namespace we created was started by us.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for ns in "${NS_CREATED[@]}"; do
    wait_for 2 0.05 eval "[ -z \"\$(ip netns pids $ns 2>/dev/null)\" ]" >/dev/null 2>&1
    ip netns del "$ns" 2>/dev/null
  done
  NS_CREATED=(); NS_PIDS=(); NS_HOLDERS=()
  return 0
}
