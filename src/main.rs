//! The `harust` command: the daemon and the tools that talk to it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use log::{LevelFilter, error};

use harust::config;
use harust::engine::Scope;
use harust::runtime::{Options, Runtime};
use harust::systemd::{self, Notifier};
use harust::{resources, state};

const DEFAULT_CONFIG_DIR: &str = "/etc/harust";
const DEFAULT_STATE_DIR: &str = "/var/lib/harust";

/// A systemd-native high-availability daemon, wire-compatible with
/// heartbeat 3.0.6: floating addresses and systemd units fail over between
/// nodes configured with heartbeat's ha.cf, authkeys and haresources.
#[derive(Parser, Debug)]
#[command(
    name = "harust",
    version,
    about,
    long_about = None,
    after_help = "Exit status of status, standby, takeover, reload, metrics and fence-confirm: 0 done; 1 other \
                  failure (e.g. the bus is unreachable); 2 bad command line; 3 harust is \
                  not running; 4 access denied (Standby, Takeover and Reload need root); \
                  5 refused by the daemon (e.g. no live peer to take over); 6 timed out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct BusArg {
    /// D-Bus address of the bus the daemon serves its API on (default: the
    /// system bus).
    #[arg(long, value_name = "ADDRESS")]
    bus: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
struct ConfigArgs {
    /// Directory holding ha.cf, authkeys and haresources.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// This node's name, as in ha.cf's `node` lines (default: uname -n).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cluster daemon in the foreground (systemd supervises it).
    Daemon {
        #[command(flatten)]
        config: ConfigArgs,
        /// Bus to serve org.harust.Harust1 on: an address, or `none` to run
        /// without the D-Bus API (default: the system bus).
        #[arg(long, value_name = "ADDRESS|none")]
        bus: Option<String>,
        /// Bus where systemd's manager is reached (default: the system bus).
        #[arg(long, value_name = "ADDRESS")]
        systemd_bus: Option<String>,
        /// Where the generation counter and node UUID are kept.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Log level: error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: LevelFilter,
        /// Gratuitous ARP / unsolicited NA rounds sent after taking an address.
        #[arg(long, value_name = "N", default_value_t = 5)]
        announce_count: u32,
        /// Milliseconds between those rounds (the first goes at once).
        #[arg(long, value_name = "MS", default_value_t = 200)]
        announce_interval: u64,
    },
    /// Parse and validate the configuration; print a summary or every error.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show nodes, links, groups and recent transitions.
    Status {
        #[command(flatten)]
        bus: BusArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hand resource groups to the peer (heartbeat's hb_standby).
    Standby {
        /// all, local, foreign or failback.
        #[arg(default_value = "all", value_parser = parse_scope)]
        scope: Scope,
        #[command(flatten)]
        bus: BusArg,
    },
    /// Take resource groups over from the peer (heartbeat's hb_takeover).
    Takeover {
        /// all, local, foreign or failback.
        #[arg(default_value = "all", value_parser = parse_scope)]
        scope: Scope,
        #[command(flatten)]
        bus: BusArg,
    },
    /// Turn cluster-wide maintenance mode on or off: while on, no node
    /// acquires, releases or fails over anything, and a daemon may be
    /// restarted without moving its groups.
    Maintenance {
        /// on or off.
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set, value_name = "on|off")]
        mode: bool,
        #[command(flatten)]
        bus: BusArg,
    },
    /// Print the daemon's counters and state as OpenMetrics text (for
    /// Prometheus), read over D-Bus.
    Metrics {
        #[command(flatten)]
        bus: BusArg,
        /// Answer one HTTP request on stdin/stdout instead (for the
        /// socket-activated harust-metrics.socket, Accept=yes).
        #[arg(long)]
        http: bool,
    },
    /// Confirm that NODE is off (heartbeat's meatware): counts as a
    /// successful fence of its current death, so this node may take its
    /// groups over. Only after making sure it is really off or reset.
    FenceConfirm {
        /// The node, as in ha.cf's node lines.
        node: String,
        #[command(flatten)]
        bus: BusArg,
    },
    /// Fence NODE with this node's devices from ha.cf and fence.d/NODE
    /// (run by harust-fence@NODE.service; exit status 0 once fenced).
    FenceRun {
        /// The node to fence.
        node: String,
        /// Directory holding ha.cf, authkeys, haresources and fence.d/.
        #[arg(long, value_name = "DIR", env = "HARUST_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
        config_dir: PathBuf,
        /// This node's name (default: uname -n).
        #[arg(long, value_name = "NAME", env = "HARUST_NODE")]
        local: Option<String>,
    },
    /// Ask the daemon to re-read its configuration.
    Reload {
        #[command(flatten)]
        bus: BusArg,
    },
    /// Stop this node's resource units and remove its floating addresses,
    /// right to left (for ExecStopPost= after a crash or a watchdog kill).
    ReleaseLocal {
        #[command(flatten)]
        config: ConfigArgs,
        /// Bus where systemd's manager is reached (default: the system bus).
        #[arg(long, value_name = "ADDRESS")]
        systemd_bus: Option<String>,
        /// The daemon's state directory: in maintenance mode nothing is
        /// released.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Write man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory; man pages go to DIR/man, completions to DIR/completions.
        dir: PathBuf,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s)
        .ok_or_else(|| format!("unknown scope {s:?}: use all, local, foreign or failback"))
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?}: use on or off")),
    }
}

fn local_node(arg: &Option<String>) -> String {
    match arg {
        Some(n) => n.to_ascii_lowercase(),
        None => {
            let mut buf = [0u8; 256];
            // SAFETY: gethostname writes at most buf.len() bytes.
            let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if rc == 0 {
                String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase()
            } else {
                String::new()
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Daemon {
            config,
            bus,
            systemd_bus,
            state_dir,
            log_level,
            announce_count,
            announce_interval,
        } => {
            if let Err(e) = systemd::init_logging(log_level) {
                eprintln!("harust: cannot set up logging: {e}");
            }
            let opts = Options {
                config_dir: config.config_dir.clone(),
                node: local_node(&config.node),
                systemd_bus,
                state_dir,
                announce: harust::vip::AnnounceConfig {
                    count: announce_count,
                    interval: std::time::Duration::from_millis(announce_interval),
                },
            };
            match tokio_main(daemon(opts, bus)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::ReleaseLocal {
            config,
            systemd_bus,
            state_dir,
        } => {
            let _ = systemd::init_logging(LevelFilter::Info);
            let m = state::load_maintenance(&state_dir);
            if m.on {
                // The cluster does not move in maintenance: the restarted
                // daemon adopts what is up here.
                harust::notice!(harust_event = "release-local";
                    "maintenance mode is on (set on {}): leaving every resource in place", m.by);
                println!("maintenance mode is on: nothing released");
                return ExitCode::SUCCESS;
            }
            let node = local_node(&config.node);
            let loaded = match config::load(&config.config_dir, &node) {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return ExitCode::FAILURE;
                }
            };
            match tokio_main(resources::release_local(
                &loaded.config,
                systemd_bus.as_deref(),
            )) {
                Ok(n) => {
                    println!(
                        "stopped {} unit(s), removed {} address(es)",
                        n.units, n.addresses
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("harust: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status { bus, json } => client(harust::dbus::client::status(bus.bus, json)),
        Command::Standby { scope, bus } => client(harust::dbus::client::standby(bus.bus, scope)),
        Command::Takeover { scope, bus } => client(harust::dbus::client::takeover(bus.bus, scope)),
        Command::Reload { bus } => client(harust::dbus::client::reload(bus.bus)),
        Command::FenceConfirm { node, bus } => {
            client(harust::dbus::client::fence_confirm(bus.bus, node))
        }
        Command::FenceRun {
            node,
            config_dir,
            local,
        } => harust::fence::run(&config_dir, &local_node(&local), &node),
        Command::Maintenance { mode, bus } => {
            client(harust::dbus::client::maintenance(bus.bus, mode))
        }
        Command::Metrics { bus, http: false } => client(harust::dbus::metrics::metrics(
            bus.bus,
            harust::dbus::client::unix_ms(),
        )),
        Command::Metrics { bus, http: true } => {
            match tokio_main(harust::dbus::metrics::http(
                bus.bus,
                harust::dbus::client::unix_ms,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("harust: cannot answer the HTTP request: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::GenerateDocs { dir } => match generate_docs(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("harust: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn tokio_main<F: std::future::Future>(f: F) -> F::Output {
    // One thread is plenty: the daemon is one event loop plus short tasks.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
        .block_on(f)
}

async fn daemon(opts: Options, bus: Option<String>) -> anyhow::Result<()> {
    // A service manager that set NOTIFY_SOCKET waits for READY=1: if it
    // cannot be sent, say so, or a Type=notify start times out unexplained.
    let notifier = Notifier::from_env().unwrap_or_else(|e| {
        error!(harust_event = "notify-failed";
            "NOTIFY_SOCKET={} cannot be used: {e}; sd_notify is off, so a Type=notify start will time out",
            std::env::var("NOTIFY_SOCKET").unwrap_or_default());
        Notifier::disabled()
    });
    let rt = Runtime::new(opts, notifier).await?;
    let _api = match bus.as_deref() {
        Some("none") => None,
        addr => Some(harust::dbus::serve(addr, rt.handle()).await?),
    };
    rt.run().await
}

fn client(
    f: impl std::future::Future<Output = Result<String, harust::dbus::client::ClientError>>,
) -> ExitCode {
    match tokio_main(f) {
        Ok(out) => {
            if !out.is_empty() {
                use std::io::Write;
                // `harust status | head` closes the pipe early: not an error.
                let _ = writeln!(std::io::stdout().lock(), "{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("harust: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn check_config(args: &ConfigArgs) -> ExitCode {
    let node = local_node(&args.node);
    match config::load(&args.config_dir, &node) {
        Ok(loaded) => {
            let mut notes = loaded.notices.clone();
            notes.extend(config::presence::check(
                &loaded.config,
                &config::presence::Host::system(),
            ));
            notes.extend(tokio_main(route_prefixes(&loaded.config)));
            for n in &notes {
                println!("{n}");
            }
            print!("{}", config::summary(&loaded.config));
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprintln!("{d}");
            ExitCode::FAILURE
        }
    }
}

/// For each address written without a prefix, the prefix it would take
/// on this host now (its connected route's), as a notice at its group's
/// line; a warning when no connected route holds it. Best effort: without
/// netlink, nothing is said.
async fn route_prefixes(cfg: &config::Config) -> Vec<config::Diagnostic> {
    let Ok(vips) = harust::vip::Vips::connect() else {
        return Vec::new();
    };
    let path = cfg.dir.join(config::HARESOURCES).display().to_string();
    let mut out = Vec::new();
    for g in &cfg.groups {
        for r in &g.resources {
            let config::Resource::Vip(v) = r else {
                continue;
            };
            if !v.auto_prefix {
                continue;
            }
            let Ok(now) = vips.with_route_prefix(v).await else {
                continue;
            };
            let (severity, message) = if now.prefix != v.prefix {
                (
                    config::Severity::Notice,
                    format!(
                        "{}: {} would be acquired as {}/{} on this host now (its connected route)",
                        g.key, v.addr, v.addr, now.prefix
                    ),
                )
            } else {
                (
                    config::Severity::Warning,
                    format!(
                        "{}: no connected route holds {} on this host now: it would be acquired \
                         as {}/{}; write the prefix",
                        g.key, v.addr, v.addr, now.prefix
                    ),
                )
            };
            out.push(config::Diagnostic {
                path: path.clone(),
                line: Some(g.line),
                severity,
                message,
            });
        }
    }
    out
}

fn generate_docs(dir: &Path) -> anyhow::Result<()> {
    use clap_complete::Shell;
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    generate_man(&cmd, &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "harust", &comp)?;
    }
    Ok(())
}

/// harust(8) and a page per visible subcommand (harust-status(8), ...):
/// section 8, administrator commands, because the binary is in /usr/sbin
/// (Debian policy 12.1; keepalived(8) and heartbeat(8) do the same).
fn generate_man(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        generate_man(sub, dir)?;
    }
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .generate_to(dir)?;
    Ok(())
}
