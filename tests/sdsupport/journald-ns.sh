#!/bin/sh
# journald-ns.sh STATE - run by tests/sdsupport/mod.rs as PID 1 of a private
# mount+pid namespace (unshare --mount --pid --fork --kill-child).
#
# Runs a standalone systemd-journald. STATE/run is bind-mounted over /run, so
# the journal socket (/run/systemd/journal/socket inside) and the volatile
# journal files (/run/log/journal inside) are also reachable from the test
# process outside, under STATE/run. Our own journald.conf is bind-mounted over
# /etc/systemd/journald.conf (volatile storage, no kmsg, no rate limit) and a
# tmpfs hides the host's /var/log/journal.
set -eu
state=$1
mkdir -p "$state/run"
mount --bind "$state/run" /run
[ -d /var/log/journal ] && mount -t tmpfs -o mode=2755 harust-test-journal /var/log/journal
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToWall=no\nForwardToConsole=no\nRateLimitBurst=0\n' \
    > "$state/journald.conf"
mount --bind "$state/journald.conf" /etc/systemd/journald.conf
/lib/systemd/systemd-journald &
journald=$!
trap 'kill -TERM $journald' TERM INT
wait $journald
