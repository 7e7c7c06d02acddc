//! Fencing, outside the engine (docs/SAFETY.md, "Fencing").
//!
//! ```text
//!  engine ──Output::Fence{node}──▶ Fencer::start ──StartUnit──▶ harust-fence@NODE.service
//!                                                               (oneshot, TimeoutStartSec=)
//!  engine ◀─Input::FenceDone────── Fencer::done ◀──JobRemoved──      │ ExecStart=
//!                                                                    ▼
//!                         harust fence-run NODE: ha.cf + fence.d/NODE ──▶ stonith / fence_*
//! ```
//!
//! The daemon only starts the unit and waits for systemd's verdict, so a
//! fence runs sandboxed, bounded by the unit's timeout, and logs to the
//! journal under its own unit. [`run`] is what the unit executes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{self, Fence, FenceAgent, fencekeys};
use crate::engine::NodeId;
use crate::systemd::Units;

/// The template the daemon instantiates per node (instance: the node name).
pub const UNIT_TEMPLATE: &str = "harust-fence@";
/// cluster-glue's command-line front end to its STONITH plugins.
pub const STONITH: &str = "/usr/sbin/stonith";
/// Longer than the unit's `TimeoutStartSec=`, which stops a hung agent:
/// systemd's verdict always comes first.
const JOB_WAIT: Duration = Duration::from_secs(300);

/// The unit that fences `node`.
pub fn unit_name(node: &str) -> String {
    format!("{UNIT_TEMPLATE}{node}.service")
}

/// Starts fence units and hands their results back to the event loop.
pub struct Fencer {
    units: Option<Units>,
    tx: mpsc::UnboundedSender<(NodeId, Result<(), String>)>,
    rx: mpsc::UnboundedReceiver<(NodeId, Result<(), String>)>,
}

impl Fencer {
    pub fn new(units: Option<Units>) -> Fencer {
        let (tx, rx) = mpsc::unbounded_channel();
        Fencer {
            units: units.map(|u| u.with_job_timeout(JOB_WAIT)),
            tx,
            rx,
        }
    }

    /// Starts `harust-fence@NAME.service` in a task of its own; the job's
    /// result comes back through [`Fencer::done`].
    pub fn start(&self, node: NodeId, name: &str) {
        let unit = unit_name(name);
        let units = self.units.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = match units {
                Some(u) => u
                    .run_oneshot(&unit)
                    .await
                    .map_err(|e| format!("{unit}: {}", crate::events::chain(&e))),
                None => Err("systemd's manager is not connected".to_string()),
            };
            let _ = tx.send((node, result));
        });
    }

    /// The next finished fence.
    pub async fn done(&mut self) -> Option<(NodeId, Result<(), String>)> {
        self.rx.recv().await
    }
}

/// `harust fence-run NODE`, run by `harust-fence@NODE.service`: tries this
/// node's fence devices for `target` in ha.cf order until one succeeds.
/// Parameters from a credentials file go to the tool in its environment
/// (cluster-glue's `-E`) or on its standard input (fence-agents), never
/// on a command line that `ps` shows.
pub fn run(config_dir: &Path, local: &str, target: &str) -> ExitCode {
    let target = target.to_ascii_lowercase();
    let loaded = match config::load(config_dir, local) {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::FAILURE;
        }
    };
    let ha = &loaded.config.ha;
    let devices: Vec<&Fence> = ha.fences_from(local, &target).collect();
    if devices.is_empty() {
        eprintln!(
            "harust: {local} has no fence device for {target} in {} (fence {target} AGENT, \
             or stonith_host {local}|* TYPE PARAMS)",
            config_dir.join(config::HA_CF).display()
        );
        return ExitCode::FAILURE;
    }
    for f in devices {
        let what = describe(f);
        eprintln!(
            "harust: fencing {target} with {what} (ha.cf line {})",
            f.line
        );
        match run_one(config_dir, f, &target) {
            Ok(()) => {
                eprintln!("harust: {target} fenced by {what}");
                return ExitCode::SUCCESS;
            }
            Err(e) => eprintln!("harust: fencing {target} with {what} failed: {e}"),
        }
    }
    ExitCode::FAILURE
}

fn describe(f: &Fence) -> String {
    match &f.agent {
        FenceAgent::Stonith { kind, .. } => format!("STONITH device {kind}"),
        FenceAgent::Agent(a) => format!("fence agent {a}"),
    }
}

fn run_one(config_dir: &Path, f: &Fence, target: &str) -> Result<(), String> {
    let mut cmd;
    let mut stdin_text = None;
    match &f.agent {
        FenceAgent::Stonith {
            kind,
            inline: Some(params),
        } => {
            // heartbeat's own form: its parameters are its -p string.
            cmd = Command::new(STONITH);
            cmd.args(["-t", kind, "-p", params, "-T", "reset", target]);
        }
        FenceAgent::Stonith { kind, inline: None } => {
            let kv = credentials(config_dir, target)?;
            cmd = Command::new(STONITH);
            cmd.args(["-t", kind, "-E", "-T", "reset", target]);
            cmd.envs(kv);
        }
        FenceAgent::Agent(agent) => {
            let mut kv = credentials(config_dir, target)?;
            if !kv.iter().any(|(k, _)| k == "action") {
                kv.push(("action".into(), "reboot".into()));
            }
            cmd = Command::new(agent_path(agent));
            stdin_text = Some(
                kv.iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect::<String>(),
            );
        }
    }
    cmd.stdin(if stdin_text.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))?;
    if let (Some(text), Some(mut stdin)) = (stdin_text, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the agent's options: {e}"))?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("it exited with {status}"))
    }
}

fn credentials(config_dir: &Path, target: &str) -> Result<Vec<(String, String)>, String> {
    fencekeys::load(&fencekeys::path(config_dir, target), 0).map_err(|d| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// A fence-agents command by name is looked up where Debian's
/// fence-agents installs it.
fn agent_path(agent: &str) -> std::path::PathBuf {
    if agent.starts_with('/') {
        return agent.into();
    }
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(agent))
        .find(|p| p.exists())
        .unwrap_or_else(|| agent.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_is_named_after_the_node() {
        assert_eq!(unit_name("node-a"), "harust-fence@node-a.service");
    }
}
