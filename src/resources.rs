//! Carrying out resource actions: a group's addresses as one netlink batch
//! (with their GARP/NA rounds), units and mounts through systemd's manager,
//! the default route's source, and `harust release-local`. Nothing is
//! decided here: the runtime hands each of the engine's Start and Stop
//! outputs to an [`Actor`], which runs it in a task of its own and sends
//! the result back, and reconciles what is really up at start.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use log::{debug, warn};
use tokio::sync::mpsc;

use crate::config::{Config, Resource, Vip};
use crate::engine::Op;
use crate::events::{chain, report};
use crate::systemd::Units;
use crate::vip::{self, Announcer, Vips};

/// The default route's source before each held `IPsrcaddr`, by position.
pub type Sources = Arc<std::sync::Mutex<HashMap<(usize, usize), Option<IpAddr>>>>;

/// A thread of its own for the address work (netlink requests and dumps,
/// GARP/NA), so a large group's batch never delays the loop's thread, which
/// sends and receives the heartbeats; see `lower_priority`.
pub fn worker() -> std::io::Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("harust-resources".into())
        .spawn(move || {
            lower_priority();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the resource thread did not start"))?
}

/// A resource action's result, back to the loop.
pub struct ActionDone {
    pub group: usize,
    pub resource: usize,
    pub op: Op,
    pub result: Result<(), String>,
}

/// Carries out the engine's Start and Stop outputs off the loop, each
/// result sent back as an [`ActionDone`]; borrowed from the runtime for
/// each action.
pub struct Actor<'a> {
    pub cfg: &'a Config,
    pub vips: &'a Arc<Vips>,
    /// Where address work runs ([`worker`]).
    pub worker: &'a tokio::runtime::Handle,
    pub units: Option<&'a Units>,
    pub announcer: &'a Announcer,
    pub sources: &'a Sources,
    pub done: &'a mpsc::UnboundedSender<ActionDone>,
}

impl Actor<'_> {
    /// Adds or deletes addresses of a group as one netlink batch, on the
    /// resource thread; the results come back through `done`, one per
    /// address, in the order asked.
    pub fn act_vips(&self, group: usize, op: Op, resources: Vec<usize>) {
        let vips: Vec<Vip> = resources
            .iter()
            .filter_map(|&r| self.cfg.groups[group].resources[r].vip().cloned())
            .collect();
        if op == Op::Stop {
            // An address we give up must not be announced any more.
            for &r in &resources {
                self.announcer.cancel((group, r));
            }
        }
        let tx = self.done.clone();
        let nl = Arc::clone(self.vips);
        let announcer = self.announcer.clone();
        let gkey = self.cfg.groups[group].key.clone();
        self.worker.spawn(async move {
            let (vips, results) = apply_vips(&nl, &announcer, group, op, &resources, vips).await;
            for ((resource, v), result) in resources.into_iter().zip(&vips).zip(results) {
                let what = format!("{}/{}", v.addr, v.prefix);
                report(&gkey, &what, op, &result);
                let _ = tx.send(ActionDone {
                    group,
                    resource,
                    op,
                    result,
                });
            }
        });
    }

    /// Starts or stops a resource in its own task; the result comes back
    /// through `done`.
    pub fn act(&self, group: usize, resource: usize, op: Op) {
        let res = self.cfg.groups[group].resources[resource].clone();
        if let Resource::Vip(_) = res {
            return self.act_vips(group, op, vec![resource]);
        }
        let tx = self.done.clone();
        let units = self.units.cloned();
        let vips = Arc::clone(self.vips);
        let announcer = self.announcer.clone();
        let gkey = self.cfg.groups[group].key.clone();
        let sources = Arc::clone(self.sources);
        tokio::spawn(async move {
            let result = apply(
                &res,
                (group, resource),
                op,
                units.as_ref(),
                &vips,
                &announcer,
                &sources,
            )
            .await;
            report(&gkey, &res.describe(), op, &result);
            let _ = tx.send(ActionDone {
                group,
                resource,
                op,
                result,
            });
        });
    }

    /// Which resources are really up now; with `adopting` (maintenance)
    /// an announcement counts as up too.
    pub async fn reconcile(&self, adopting: bool) -> Vec<(usize, usize)> {
        let vips: Vec<Vip> = self
            .cfg
            .groups
            .iter()
            .flat_map(|group| group.resources.iter().filter_map(Resource::vip))
            .cloned()
            .collect();
        // One address dump for all of them, in the order the loop below
        // meets them.
        let vips_up = self.vips.list_present(&vips).await.unwrap_or_else(|e| {
            warn!("cannot check the addresses: {e}");
            vec![false; vips.len()]
        });
        let mut vips_up = vips_up.into_iter();
        let mut present = Vec::new();
        for (g, group) in self.cfg.groups.iter().enumerate() {
            for (r, res) in group.resources.iter().enumerate() {
                let up = match res {
                    Resource::Vip(_) => vips_up.next().unwrap_or(false),
                    // Nothing to take back: an announcement is made again on
                    // the next acquire. In maintenance it is part of what
                    // is adopted, so it does not keep its group from it.
                    Resource::Announce { .. } => adopting,
                    // Left by a crashed daemon: releasing it takes it off.
                    Resource::SrcAddr(a) => self.vips.is_default_source(*a).await.unwrap_or(false),
                    Resource::Unit(_) | Resource::Mount(_) => match self.units {
                        Some(units) => units
                            .active_state(&res.unit_name().unwrap_or_default())
                            .await
                            .map(|s| matches!(s.as_str(), "active" | "activating" | "reloading"))
                            .unwrap_or(false),
                        None => false,
                    },
                };
                if !up {
                    continue;
                }
                if !adopting {
                    warn!(harust_event = "reconcile", harust_group = group.key.as_str();
                        "resource {r} of group {} is up although this daemon holds nothing; removing it",
                        group.key);
                }
                present.push((g, r));
            }
        }
        present
    }
}

/// The (group, resource) positions of the resources `pick` selects.
pub fn positions<'a>(
    cfg: &'a Config,
    pick: impl Fn(&Resource) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    cfg.groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            group
                .resources
                .iter()
                .enumerate()
                .map(move |(r, res)| (g, r, res))
        })
        .filter(move |(_, _, res)| pick(res))
        .map(|(g, r, _)| (g, r))
}

/// Puts the calling thread below the loop's when the daemon runs with a
/// real-time policy (`CPUSchedulingPolicy=rr`, which this thread
/// inherited): back to the normal policy, so a beat due always preempts
/// address work. Without one, both threads are equal and run side by side.
fn lower_priority() {
    let normal = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread only.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) } != 0 {
        debug!(
            "resource thread keeps its policy: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Adds (`Op::Start`) or deletes a group's addresses `vips`, at positions
/// `resources`, as one netlink batch, and starts or cancels their
/// announcements. Returns the addresses as resolved and one result per
/// address, in the order asked.
pub async fn apply_vips(
    nl: &Vips,
    announcer: &Announcer,
    group: usize,
    op: Op,
    resources: &[usize],
    vips: Vec<Vip>,
) -> (Vec<Vip>, Vec<Result<(), String>>) {
    if op == Op::Start {
        // An address written without a prefix takes its connected
        // route's, as heartbeat's IPaddr does (a route dump each).
        let mut resolved = Vec::with_capacity(vips.len());
        for v in &vips {
            resolved.push(nl.with_route_prefix(v).await);
        }
        let vips: Vec<Vip> = vips
            .iter()
            .zip(&resolved)
            .map(|(v, r)| r.as_ref().unwrap_or(v).clone())
            .collect();
        let ok: Vec<Vip> = resolved
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let mut batch = nl.add_batch(&ok).await.into_iter();
        let added: Vec<Result<vip::AddOutcome, vip::VipError>> = resolved
            .into_iter()
            .map(|r| match r {
                Ok(_) => batch.next().expect("one result per address asked for"),
                Err(e) => Err(e),
            })
            .collect();
        // Neighbours learn the new owner at once; the repeats run
        // on after the action is confirmed.
        let up: Vec<Vip> = vips
            .iter()
            .zip(&added)
            .filter(|(_, r)| r.is_ok())
            .map(|(v, _)| v.clone())
            .collect();
        let mut targets = nl.targets(&up).await.into_iter();
        for (&r, a) in resources.iter().zip(&added) {
            if a.is_ok() {
                match targets.next() {
                    Some(Ok(t)) => announcer.start((group, r), t),
                    Some(Err(e)) => warn!("cannot announce: {}", chain(&e)),
                    None => {}
                }
            }
        }
        let results = added
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|e| chain(&e)))
            .collect();
        (vips, results)
    } else {
        let results = nl
            .del_batch(&vips)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|e| chain(&e)))
            .collect();
        (vips, results)
    }
}

/// Starts or stops one resource other than an address at `key` (group,
/// resource).
pub async fn apply(
    res: &Resource,
    key: (usize, usize),
    op: Op,
    units: Option<&Units>,
    vips: &Vips,
    announcer: &Announcer,
    sources: &Sources,
) -> Result<(), String> {
    match (res, op) {
        (Resource::Unit(u), Op::Start) => match units {
            Some(units) => units.start(u).await.map_err(|e| chain(&e)),
            None => Err("systemd's manager is not connected".to_string()),
        },
        (Resource::Unit(u), Op::Stop) => match units {
            Some(units) => units.stop(u).await.map_err(|e| chain(&e)),
            None => Err("systemd's manager is not connected".to_string()),
        },
        (Resource::Announce { .. }, Op::Start) => {
            if let Some(v) = vip::announced(res) {
                match vips.targets(std::slice::from_ref(&v)).await.pop() {
                    Some(Ok(t)) => announcer.start(key, t),
                    Some(Err(e)) => warn!("cannot announce: {}", chain(&e)),
                    None => {}
                }
            }
            Ok(())
        }
        (Resource::Announce { .. }, Op::Stop) => {
            announcer.cancel(key);
            Ok(())
        }
        (Resource::SrcAddr(a), Op::Start) => match vips.set_default_source(*a).await {
            Ok(before) => {
                sources
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, before);
                Ok(())
            }
            Err(e) => Err(chain(&e)),
        },
        (Resource::SrcAddr(a), Op::Stop) => {
            let before = sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key)
                .flatten();
            vips.restore_default_source(*a, before)
                .await
                .map_err(|e| chain(&e))
        }
        (Resource::Mount(m), Op::Start) => match units {
            Some(units) => units
                .start_mount(
                    &m.unit(),
                    &m.what,
                    &m.path,
                    m.fstype.as_deref(),
                    m.options.as_deref(),
                )
                .await
                .map_err(|e| chain(&e)),
            None => Err("systemd's manager is not connected".to_string()),
        },
        (Resource::Mount(m), Op::Stop) => match units {
            Some(units) => units.stop(&m.unit()).await.map_err(|e| chain(&e)),
            None => Err("systemd's manager is not connected".to_string()),
        },
        // Addresses go through act_vips.
        (Resource::Vip(_), _) => Ok(()),
    }
}

/// What `harust release-local` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub addresses: usize,
    pub units: usize,
}

/// `harust release-local`: stop every configured unit that runs here and
/// remove every configured address, each group right to left, last group
/// first (the order of a release). Run by the unit's ExecStopPost= after
/// an abnormal exit, so a crashed or hung node neither answers for a VIP
/// nor runs a service its peer now holds. Goes on past a failure and
/// reports them all at the end.
pub async fn release_local(cfg: &Config, systemd_bus: Option<&str>) -> Result<Released> {
    let vips = Vips::connect().context("cannot open rtnetlink")?;
    let has_units = cfg
        .groups
        .iter()
        .any(|g| g.resources.iter().any(|r| r.unit_name().is_some()));
    let mut errors: Vec<String> = Vec::new();
    let units = if has_units {
        match Units::connect(systemd_bus).await {
            Ok(u) => Some(u),
            Err(e) => {
                errors.push(format!("cannot reach systemd's manager: {e}"));
                None
            }
        }
    } else {
        None
    };
    // First the default route's source: deleting an address also deletes
    // the routes that use it as their source, the default route included.
    for g in &cfg.groups {
        for r in &g.resources {
            if let Resource::SrcAddr(a) = r
                && vips.is_default_source(*a).await.unwrap_or(false)
            {
                match vips.restore_default_source(*a, None).await {
                    Ok(_) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "took {a}, left by the stopped daemon, off the default route");
                    }
                    Err(e) => errors.push(format!("cannot take {a} off the default route: {e}")),
                }
            }
        }
    }
    let mut done = Released::default();
    for g in cfg.groups.iter().rev() {
        for r in g.resources.iter().rev() {
            if let Resource::Vip(v) = r {
                if !vips.present(v).await.unwrap_or(false) {
                    continue;
                }
                match vips.del(v).await {
                    Ok(_) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "removed {}/{} left behind by the stopped daemon", v.addr, v.prefix);
                        done.addresses += 1;
                    }
                    Err(e) => errors.push(format!("cannot remove {}: {e}", v.addr)),
                }
            } else if let (Some(name), Some(u)) = (r.unit_name(), &units) {
                let running = u
                    .active_state(&name)
                    .await
                    .is_ok_and(|s| !matches!(s.as_str(), "inactive" | "failed"));
                if !running {
                    continue;
                }
                match u.stop(&name).await {
                    Ok(()) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "stopped {name}, left running by the stopped daemon");
                        done.units += 1;
                    }
                    Err(e) => errors.push(format!("cannot stop {name}: {e}")),
                }
            }
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(done)
}
