//! The event loop's deadline timer, a timerfd.
//!
//! tokio's timer wheel files a deadline that falls in the next 64 ms-aligned
//! block of its finest level, however near, one level up, and wakes the
//! runtime at the block's start to move it down: at a keepalive of 10 ms
//! that is about 15 wake-ups a second with nothing to do (13 % of an idle
//! node's). Moving a tokio timer earlier than the wheel's earliest also
//! wakes the runtime through its eventfd. A timerfd fires once, when due,
//! and re-arming it is one syscall.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// A one-shot timer on CLOCK_MONOTONIC (the clock of [`Instant`]).
pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
    armed: Option<Instant>,
}

impl Deadline {
    /// A disarmed timer, registered with the current tokio runtime.
    pub fn new() -> io::Result<Deadline> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: we own `fd` and it stays open as long as the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Deadline { fd, armed: None })
    }

    /// Fires at `at` (at once if it has passed); `None` disarms. Setting
    /// the deadline it already has costs nothing.
    pub fn set(&mut self, at: Option<Instant>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        let value = match at {
            // A zero it_value would disarm the timer: a deadline due now
            // fires after a nanosecond.
            Some(t) => t
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1)),
            None => Duration::ZERO,
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: Timespec {
                tv_sec: value.as_secs() as _,
                tv_nsec: value.subsec_nanos() as _,
            },
        };
        // Re-arming also resets the expiry count, so a fired timer that is
        // moved on is not readable any more.
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        self.armed = at;
        Ok(())
    }

    /// Waits until the armed deadline is due; then the timer is disarmed.
    /// Cancel-safe: dropped before it fires, it consumes nothing.
    pub async fn fired(&mut self) -> io::Result<()> {
        loop {
            // The clock first: a loop kept busy by other inputs may not
            // let tokio poll epoll for the timerfd's expiry for a while,
            // and the beat must not wait for that.
            if self.armed.is_some_and(|t| t <= Instant::now()) {
                self.armed = None;
                return Ok(());
            }
            // Every expiry is an edge in epoll whatever the unread count,
            // and re-arming resets that count, so the count is never read
            // (a syscall per beat): readiness left over from an expiry
            // that was taken from the clock above, or undone by a re-arm,
            // is cleared and the clock asked again.
            self.fd.readable().await?.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Waits for `t` to fire, within a bound.
    async fn fires(t: &mut Deadline) {
        tokio::time::timeout(Duration::from_secs(5), t.fired())
            .await
            .expect("the timer fired")
            .unwrap();
    }

    #[test]
    fn fires_at_its_deadline_and_not_before() {
        runtime().block_on(async {
            let mut t = Deadline::new().unwrap();
            let start = Instant::now();
            t.set(Some(start + Duration::from_millis(20))).unwrap();
            fires(&mut t).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            assert_eq!(t.armed, None);
        });
    }

    #[test]
    fn a_moved_deadline_replaces_the_old_one() {
        runtime().block_on(async {
            let mut t = Deadline::new().unwrap();
            let start = Instant::now();
            t.set(Some(start + Duration::from_millis(1))).unwrap();
            // Let the first deadline pass unread, then move it on: the
            // leftover readiness must not count as the new deadline.
            tokio::time::sleep(Duration::from_millis(10)).await;
            t.set(Some(start + Duration::from_millis(60))).unwrap();
            fires(&mut t).await;
            assert!(start.elapsed() >= Duration::from_millis(60));
        });
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_once_and_none_never_fires() {
        runtime().block_on(async {
            let mut t = Deadline::new().unwrap();
            let past = Instant::now() - Duration::from_millis(5);
            t.set(Some(past)).unwrap();
            fires(&mut t).await;
            t.set(Some(Instant::now() + Duration::from_millis(5)))
                .unwrap();
            t.set(None).unwrap();
            let waited = tokio::time::timeout(Duration::from_millis(50), t.fired()).await;
            assert!(waited.is_err(), "a disarmed timer fired");
        });
    }
}
