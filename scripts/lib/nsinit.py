#!/usr/bin/python3
"""PID 1 of a lab node's private PID namespace (see netns.sh ns_holder_start).

Reaps orphans (heartbeat daemonizes; its zombies would keep its pid file
"alive") and exits after LIFETIME seconds or on SIGTERM/SIGINT. When it exits
the kernel SIGKILLs every process left in the namespace, which is how a node
is torn down. reboot(2) inside the namespace only kills this process.
"""
import os
import signal
import sys
import time

deadline = time.monotonic() + (float(sys.argv[1]) if len(sys.argv) > 1 else 1800.0)
stop = False


def _term(_sig, _frm):
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
