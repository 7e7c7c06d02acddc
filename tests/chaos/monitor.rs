//! Who holds what at every instant of a run, not only once it settled:
//! `ip -ts -o monitor address` in each node namespace, from before the
//! daemons start to the end of the check. The monitors run SCHED_FIFO
//! (`chrt -f`), so each change is stamped within microseconds of the
//! kernel's event even while the machine is busy compiling; a
//! hand-over's release and the peer's take-over are at least one UDP trip
//! through the test relay apart.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Netns, Node};

/// One address appearing or going, as a monitor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Unix time, microseconds.
    pub at_us: i64,
    pub node: Node,
    pub addr: Ipv4Addr,
    pub up: bool,
}

/// An interval during which more than one node held group `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dual {
    pub group: usize,
    pub nodes: Vec<Node>,
    pub from_us: i64,
    /// `None`: still two holders when the monitors stopped.
    pub to_us: Option<i64>,
    /// The node whose address opened the interval.
    pub opened_by: Node,
    /// The node whose removal closed it.
    pub closed_by: Option<Node>,
}

/// The running monitors, killed (by PID) on drop.
pub struct Monitors {
    children: Vec<(Node, Child, PathBuf)>,
}

/// Where node `n`'s monitor writes: kept with a run's logs.
fn path(dir: &Path, n: Node) -> PathBuf {
    dir.join(format!(
        "addr-monitor-{}.txt",
        crate::support::daemon::node_name(n)
    ))
}

impl Monitors {
    /// Starts one monitor per node and waits (bounded) until each has
    /// reported a probe address, so that nothing after this is missed.
    pub fn start(nodes: &[(Node, &Netns)], dir: &Path) -> Monitors {
        fs::create_dir_all(dir).expect("creating the run's directory");
        let mut m = Monitors {
            children: Vec::new(),
        };
        for &(n, ns) in nodes {
            let p = path(dir, n);
            let out = fs::File::create(&p).expect("creating a monitor file");
            // `ip netns exec` and `chrt` exec in place: the PID is ip's.
            let child = Command::new("ip")
                .args(["netns", "exec", ns.name(), "chrt", "-f", "50"])
                .args(["ip", "-ts", "-o", "monitor", "address"])
                .env("TZ", "UTC")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(Stdio::null())
                .spawn()
                .expect("starting ip monitor");
            m.children.push((n, child, p));
        }
        for &(n, ns) in nodes {
            let probe = format!("198.18.3.{}", 250 + n.host());
            let p = path(dir, n);
            let start = Instant::now();
            loop {
                // Again each time: the monitor may have missed the first.
                let _ = ns.exec(&["ip", "addr", "del", &format!("{probe}/32"), "dev", "lo"]);
                ns.exec_ok(&["ip", "addr", "add", &format!("{probe}/32"), "dev", "lo"]);
                let seen = || fs::read_to_string(&p).unwrap_or_default().contains(&probe);
                let deadline = Instant::now() + Duration::from_millis(500);
                while !seen() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(10));
                }
                if seen() {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "ip monitor in {} reported nothing within 10 s",
                    ns.name()
                );
            }
            ns.exec_ok(&["ip", "addr", "del", &format!("{probe}/32"), "dev", "lo"]);
        }
        m
    }

    /// Stops the monitors and returns every address change they saw.
    pub fn finish(&mut self) -> Vec<Change> {
        let mut all = Vec::new();
        for (n, child, p) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            all.extend(parse(*n, &fs::read_to_string(p).unwrap_or_default()));
        }
        self.children.clear();
        all
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `[2026-12-06T01:03:19.635943]` (UTC) as unix microseconds.
fn stamp(s: &str) -> Option<i64> {
    let s = s.strip_prefix('[')?.strip_suffix(']')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.')?;
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let us: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    Some(((days(y, mo, da) * 24 + h) * 60 + mi) * 60_000_000 + se * 1_000_000 + us)
}

/// The IPv4 address changes in one monitor's output.
pub fn parse(node: Node, text: &str) -> Vec<Change> {
    text.lines()
        .filter_map(|line| {
            let (ts, rest) = line.split_once(' ')?;
            let at_us = stamp(ts)?;
            let (up, rest) = match rest.strip_prefix("Deleted ") {
                Some(r) => (false, r),
                None => (true, rest),
            };
            let (_, after) = rest.split_once(" inet ")?;
            let addr = after.split(['/', ' ']).next()?.parse().ok()?;
            Some(Change {
                at_us,
                node,
                addr,
                up,
            })
        })
        .collect()
}

/// Every interval in which two or more nodes held an address of the same
/// group. At one timestamp, removals count before additions (the
/// benefit of the doubt at the clock's resolution).
pub fn duals(changes: &[Change], groups: &[(Node, Vec<Ipv4Addr>)]) -> Vec<Dual> {
    use std::collections::BTreeMap;
    let mut sorted = changes.to_vec();
    sorted.sort_by_key(|c| (c.at_us, c.up));
    let mut held: Vec<(Node, Ipv4Addr)> = Vec::new();
    let mut open: BTreeMap<usize, Dual> = BTreeMap::new();
    let mut found = Vec::new();
    for c in sorted {
        held.retain(|&h| h != (c.node, c.addr));
        if c.up {
            held.push((c.node, c.addr));
        }
        for (g, (_, vips)) in groups.iter().enumerate() {
            if !vips.contains(&c.addr) {
                continue;
            }
            let mut nodes: Vec<Node> = Vec::new();
            for &(n, a) in &held {
                if vips.contains(&a) && !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
            nodes.sort_by_key(|n| n.host());
            match (nodes.len() > 1, open.remove(&g)) {
                (true, Some(mut d)) => {
                    for n in nodes {
                        if !d.nodes.contains(&n) {
                            d.nodes.push(n);
                        }
                    }
                    open.insert(g, d);
                }
                (true, None) => {
                    open.insert(
                        g,
                        Dual {
                            group: g,
                            nodes,
                            from_us: c.at_us,
                            to_us: None,
                            opened_by: c.node,
                            closed_by: None,
                        },
                    );
                }
                (false, Some(mut d)) => {
                    d.to_us = Some(c.at_us);
                    d.closed_by = Some(c.node);
                    found.push(d);
                }
                (false, None) => {}
            }
        }
    }
    found.extend(open.into_values());
    found.sort_by_key(|d| d.from_us);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_OUT: &str = "\
[2026-12-06T01:03:19.635943] 3: eth0    inet 198.18.1.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
[2026-12-06T01:03:20.000100] Deleted 3: eth0    inet 198.18.1.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
";
    const B_OUT: &str = "\
[2026-12-06T01:03:19.900000] 3: eth0    inet 198.18.1.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
[2026-12-06T01:03:20.000100] Deleted 3: eth0    inet 198.18.1.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
[2026-12-06T01:03:20.000100] 3: eth0    inet 198.18.1.200/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
";

    #[test]
    fn stamps_are_unix_microseconds() {
        // date -u -d 2026-12-06T01:03:19 +%s
        assert_eq!(
            stamp("[2026-12-06T01:03:19.635943]"),
            Some(1_796_518_999_635_943)
        );
    }

    #[test]
    fn an_overlap_of_two_holders_is_one_interval() {
        let g = vec![(Node::A, vec![Ipv4Addr::new(198, 18, 1, 200)])];
        let mut c = parse(Node::A, A_OUT);
        c.extend(parse(Node::B, B_OUT));
        assert_eq!(c.len(), 5);
        let d = duals(&c, &g);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].nodes, vec![Node::A, Node::B]);
        assert_eq!((d[0].opened_by, d[0].closed_by), (Node::B, Some(Node::A)));
        assert_eq!(d[0].to_us.unwrap() - d[0].from_us, 100_100);
        // Without B's early add: a release and a take-over at one instant
        // are no overlap.
        let c: Vec<Change> = c
            .into_iter()
            .filter(|x| x.at_us % 1_000_000 != 900_000)
            .collect();
        assert_eq!(duals(&c, &g), vec![]);
    }
}
