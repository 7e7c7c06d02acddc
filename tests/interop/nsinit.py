#!/usr/bin/python3
"""PID 1 of a heartbeat node's PID namespace (interop harness).

Reaps orphans (heartbeat daemonizes and forks children that get
re-parented to PID 1) and exits after a bounded lifetime or on SIGTERM.
When it exits, the kernel SIGKILLs every process left in the namespace:
that is how the harness kills a heartbeat node and everything it started
(httpd, send_arp, ...). reboot(2) from ResourceManager's
RecoverFromFailedStop inside this namespace only ends this process.

usage: nsinit.py [LIFETIME_SECONDS]
"""
import os
import signal
import sys
import time

lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 1800.0
deadline = time.monotonic() + lifetime
stop = False


def _term(_signum, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _term)
signal.signal(signal.SIGINT, _term)

while not stop and time.monotonic() < deadline:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass
    except ChildProcessError:
        pass
    time.sleep(0.2)
sys.exit(0)
