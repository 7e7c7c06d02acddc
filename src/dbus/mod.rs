//! The D-Bus API: `org.harust.Harust1` at `/org/harust/Harust1`.
//! (Placeholder until the API lands: the daemon runs with `--bus none`.)

pub mod client;

use crate::runtime::Handle;

/// A served API; dropping it releases the name.
pub struct Server;

pub async fn serve(_address: Option<&str>, _handle: Handle) -> anyhow::Result<Server> {
    anyhow::bail!("the D-Bus API is not available yet; run with --bus none")
}
