# shellcheck shell=bash
# The private system-like dbus-daemon configuration of the shell harnesses
# (bench/failover, tests/interop): tests/data/system-bus.conf.in, as the
# Rust tests use it (tests/support/bus.rs).

# bus_config SOCKET ROOT: print the configuration of a bus listening on
# unix:path=SOCKET, with ROOT/dbus-interfaces/org.harust.Harust1.conf.
bus_config() {
  sed -e "s|@SOCKET@|$1|" -e "s|@POLICY@|$2/dbus-interfaces/org.harust.Harust1.conf|" \
    "$2/tests/data/system-bus.conf.in"
}
