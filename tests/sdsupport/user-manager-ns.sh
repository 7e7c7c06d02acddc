#!/bin/sh
# user-manager-ns.sh CGROUP - run by tests/sdsupport/mod.rs as PID 1 of a
# private mount+pid namespace (unshare --mount --pid --fork --kill-child).
#
# Starts a real `systemd --user` which, through dbus-user-session's
# dbus.socket/dbus.service, brings up its own session bus at
# $XDG_RUNTIME_DIR/bus. The caller sets HOME and XDG_* to directories on the
# real filesystem, so the test process outside the namespace reaches the bus.
#
# What the manager needs here (see the module docs in mod.rs):
#   * /run/systemd/system must exist (sd_booted()), or it exits 1 silently: we
#     provide it on a private tmpfs /run;
#   * a cgroup of its own named .../user@0.service;
#   * not being PID 1 of its namespace: this shell stays PID 1.
set -eu
cg=$1
mount -t tmpfs -o mode=755,size=16m harust-test-run /run
mkdir -p /run/systemd/system
if [ -d /sys/fs/cgroup/unified ]; then
    hierarchies="/sys/fs/cgroup/systemd /sys/fs/cgroup/unified"   # hybrid
else
    hierarchies="/sys/fs/cgroup"                                   # unified (v2)
fi
for h in $hierarchies; do mkdir -p "$h/$cg"; done
# shellcheck disable=SC2016
sh -c 'for h in $1; do echo $$ > "$h/$2/cgroup.procs"; done; shift 2; exec "$@"' \
    sh "$hierarchies" "$cg" \
    /lib/systemd/systemd --user --unit=harust-test.target --log-target=console --log-level=info &
manager=$!
trap 'kill -TERM $manager' TERM INT
wait $manager
