//! What a node keeps across restarts in its state directory: its identity
//! (generation and UUID) and the maintenance mode.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{error, warn};

use crate::engine;

const MAINTENANCE_FILE: &str = "maintenance";

/// The maintenance mode persisted in `state_dir` (off if never set or
/// unreadable).
pub fn load_maintenance(state_dir: &Path) -> engine::Maintenance {
    std::fs::read_to_string(state_dir.join(MAINTENANCE_FILE))
        .ok()
        .and_then(|s| engine::Maintenance::from_field(s.trim()))
        .unwrap_or_default()
}

/// Persists the maintenance mode so a restarted daemon knows it before it
/// hears any peer. Written to a temporary file and renamed: a crash leaves
/// the old or the new mode, never half of one.
pub fn save_maintenance(state_dir: &Path, m: &engine::Maintenance) {
    let path = state_dir.join(MAINTENANCE_FILE);
    let tmp = state_dir.join(".maintenance.tmp");
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| std::fs::write(&tmp, m.to_field() + "\n"))
        .and_then(|_| std::fs::rename(&tmp, &path))
    {
        error!(
            "cannot record maintenance mode in {}: {e}; a restart will not know it",
            path.display()
        );
    }
}

/// The generation (`hg`) and node UUID, persisted in `state_dir`. The
/// generation must grow on every start or peers take us for a replay.
pub fn identity(state_dir: &Path) -> (u64, [u8; 16]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let gen_path = state_dir.join("generation");
    let stored = std::fs::read_to_string(&gen_path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let generation = (stored + 1).max(now);
    let uuid_path = state_dir.join("uuid");
    let uuid = match std::fs::read(&uuid_path) {
        Ok(b) if b.len() == 16 => b.try_into().unwrap_or([0; 16]),
        _ => {
            let mut u = [0u8; 16];
            if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
                let hex: String = String::from_utf8_lossy(&b)
                    .chars()
                    .filter(|c| c.is_ascii_hexdigit())
                    .collect();
                for (i, byte) in u.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16)
                        .unwrap_or(0);
                }
            }
            let _ = std::fs::create_dir_all(state_dir);
            let _ = std::fs::write(&uuid_path, u);
            u
        }
    };
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| std::fs::write(&gen_path, generation.to_string()))
    {
        warn!(
            "cannot record the generation in {}: {e}; using the clock",
            gen_path.display()
        );
    }
    (generation, uuid)
}
