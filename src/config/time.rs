//! heartbeat's time syntax (`cl_get_msec` in cluster-glue's
//! `lib/clplumbing/cl_misc.c`): a decimal number, optionally with a
//! fraction, then a unit. No unit means seconds.
//!
//! | written | means |
//! |---|---|
//! | `2`, `1.5`, `0.5` | seconds |
//! | `2s`, `2sec` | seconds (harust's addition; heartbeat itself refuses `s`) |
//! | `500ms`, `500msec` | milliseconds |
//! | `100000us`, `100000usec` | microseconds |
//!
//! Units are case-insensitive. The result is rounded to the nearest
//! millisecond, half up, as heartbeat does; a non-zero value that would
//! round to zero becomes 1 ms, the smallest time heartbeat can represent.

use std::time::Duration;

/// The largest time accepted: heartbeat keeps times as a C `long` of
/// milliseconds and sends deadtime as hex ms, so stay within 31 bits.
pub const MAX_MS: u64 = i32::MAX as u64;

/// Why a string is not a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not in the syntax at all.
    Syntax,
    /// More than [`MAX_MS`] milliseconds.
    TooLarge,
}

/// What to show after "is not a time".
pub const TIME_HINT: &str = "use 2, 2s, 500ms or 100000us";

/// Parses one heartbeat time value.
pub fn parse_time(s: &str) -> Result<Duration, TimeError> {
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, unit) = s.split_at(num_len);
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(TimeError::Syntax);
    }
    // Nanoseconds per unit.
    let per_unit: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" => 1_000_000_000,
        "ms" | "msec" => 1_000_000,
        "us" | "usec" => 1_000,
        _ => return Err(TimeError::Syntax),
    };
    let int = int.trim_start_matches('0');
    if int.len() > 15 {
        return Err(TimeError::TooLarge);
    }
    let int_val: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| TimeError::Syntax)?
    };
    // Digits past the ninth cannot change the rounded millisecond value
    // by more than rounding already does.
    let frac = &frac[..frac.len().min(9)];
    let frac_val: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| TimeError::Syntax)?
    };
    let frac_scale = 10u128.pow(frac.len() as u32);
    let nanos = int_val * per_unit + frac_val * per_unit / frac_scale;
    let mut ms = (nanos + 500_000) / 1_000_000;
    if ms == 0 && nanos > 0 {
        ms = 1;
    }
    if ms > u128::from(MAX_MS) {
        return Err(TimeError::TooLarge);
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Formats a duration in heartbeat syntax: `30s` when whole seconds,
/// otherwise `1500ms`. The output parses back to the same value.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        parse_time(s).unwrap().as_millis()
    }

    #[test]
    fn bare_number_is_seconds() {
        assert_eq!(ms("2"), 2000);
        assert_eq!(ms("30"), 30_000);
    }

    #[test]
    fn fractions_of_seconds() {
        assert_eq!(ms("0.5"), 500);
        assert_eq!(ms("1.7"), 1700);
        assert_eq!(ms(".25"), 250);
        assert_eq!(ms("2."), 2000);
        assert_eq!(ms("0.001"), 1);
    }

    #[test]
    fn units() {
        assert_eq!(ms("2s"), 2000);
        assert_eq!(ms("2SEC"), 2000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("1700msec"), 1700);
        assert_eq!(ms("100000us"), 100);
        assert_eq!(ms("1000usec"), 1);
    }

    #[test]
    fn rounds_half_up_with_one_ms_minimum() {
        assert_eq!(ms("1499us"), 1);
        assert_eq!(ms("1500us"), 2);
        assert_eq!(ms("499us"), 1);
        assert_eq!(ms("1us"), 1);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("0ms"), 0);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "x", "2x", ".", "1.2.3", "-1", "2 s", "ms", "1e3", "2h"] {
            assert_eq!(parse_time(s), Err(TimeError::Syntax), "{s:?}");
        }
    }

    #[test]
    fn rejects_huge() {
        assert_eq!(parse_time("99999999999999999999"), Err(TimeError::TooLarge));
        assert_eq!(parse_time("3000000"), Err(TimeError::TooLarge));
        assert!(parse_time("2000000").is_ok());
    }

    #[test]
    fn format_round_trips() {
        for s in ["2", "500ms", "1.5", "0"] {
            let d = parse_time(s).unwrap();
            assert_eq!(parse_time(&format(d)).unwrap(), d);
        }
        assert_eq!(format(Duration::from_millis(30_000)), "30s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
