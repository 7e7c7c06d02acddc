//! Each chaos node gets a private bus (support::bus) so the run can read
//! its daemon's counters and transitions.

use std::process::Command;

pub use crate::support::bus::Bus;

/// `harust status --json --bus ADDR`, parsed; `Err` with what went wrong
/// if the call fails.
pub fn status(bus: &Bus) -> Result<serde_json::Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_harust"))
        .args(["status", "--json", "--bus", bus.address()])
        .output()
        .map_err(|e| format!("running harust status: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "harust status --json failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("harust status --json: {e}"))
}
