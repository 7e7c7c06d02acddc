# shellcheck shell=bash
# A private dbus-daemon configuration shaped like Debian's system bus
# (method calls denied unless a service's policy allows them) plus harust's
# own policy, for the shell harnesses: bench/failover and tests/interop.
# The Rust tests have the same in tests/support/bus.rs.

# bus_config SOCKET ROOT: print the configuration of a bus listening on
# unix:path=SOCKET, with ROOT/dbus-interfaces/org.harust.Harust1.conf.
bus_config() {
  cat <<EOF2
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$1</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>$2/dbus-interfaces/org.harust.Harust1.conf</include>
</busconfig>
EOF2
}
