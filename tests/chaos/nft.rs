//! Loss and partitions: one nftables table of the bridge family in the
//! bridge namespace, rewritten whole (one atomic `nft -f` transaction)
//! whenever the set of active faults changes.
//!
//! A node's beats enter the bridge at its port (hook `prerouting`,
//! `iifname`) and reach it leaving its port (hook `postrouting`,
//! `oifname`); both hooks see bridged and relayed (locally delivered or
//! sent) frames. A beat from x for y is addressed to the relay address
//! R(x→y), which is what a partition matches.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::plan::Dir;
use crate::relay::relay_addr;
use crate::support::{Netns, Node};

const TABLE: &str = "harust_chaos";

/// The bridge port of `node`: `a0`, `b0`, `c0` (support::Topology's names).
pub fn port(node: Node) -> String {
    format!("{}0", format!("{node:?}").to_lowercase())
}

/// The drop rules in force.
#[derive(Debug, Default, Clone)]
pub struct Rules {
    /// (node, direction, drop probability in 1/10000).
    pub loss: Vec<(usize, Node, Dir, u64)>,
    /// Directed pairs whose beats are all dropped.
    pub cut: Vec<(usize, Node, Node)>,
}

impl Rules {
    /// Removes every rule of fault `id`.
    pub fn remove(&mut self, id: usize) {
        self.loss.retain(|r| r.0 != id);
        self.cut.retain(|r| r.0 != id);
    }

    fn render(&self) -> String {
        let mut pre = String::new();
        let mut post = String::new();
        for &(_, node, dir, per10k) in &self.loss {
            let (chain, key) = match dir {
                Dir::Ingress => (&mut pre, "iifname"),
                Dir::Egress => (&mut post, "oifname"),
            };
            let _ = writeln!(
                chain,
                "    {key} \"{}\" udp dport 694 numgen random mod 10000 < {per10k} drop",
                port(node)
            );
        }
        for &(_, from, to) in &self.cut {
            let _ = writeln!(
                pre,
                "    iifname \"{}\" ip daddr {} udp dport 694 drop",
                port(from),
                relay_addr(from, to)
            );
        }
        format!(
            "table bridge {TABLE} {{
  chain pre {{ type filter hook prerouting priority 0; policy accept; }}
  chain post {{ type filter hook postrouting priority 0; policy accept; }}
}}
flush table bridge {TABLE}
table bridge {TABLE} {{
  chain pre {{
{pre}  }}
  chain post {{
{post}  }}
}}
"
        )
    }

    /// Makes the bridge's table say exactly this, in one transaction.
    pub fn apply(&self, bridge: &Netns) {
        let script = self.render();
        let mut child = Command::new("ip")
            .args(["netns", "exec", bridge.name(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running nft");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(script.as_bytes())
            .expect("writing the nft script");
        let out = child.wait_with_output().expect("waiting for nft");
        assert!(
            out.status.success(),
            "nft -f in {} failed ({}): {}\nscript:\n{script}",
            bridge.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
