//! What `leadsync run` tells systemd (`Type=notify`): `READY=1` once the database is migrated
//! and the schedule runs, `RELOADING=1` then `READY=1` around a reload (SIGHUP),
//! `STOPPING=1` when a shutdown begins, and `WATCHDOG=1` while the
//! stall watchdog finds every job on time (`WatchdogSec=`), so systemd restarts a daemon whose
//! schedule stalled. Not under systemd (no `NOTIFY_SOCKET`), every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::events;

pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload begins (`RELOADING=1` with the monotonic time, as `Type=notify-reload` wants);
/// [`ready`] ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half its timeout, when systemd set one.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

/// The schedule is healthy: tell the watchdog.
pub fn watchdog_ping() {
    send(&[NotifyState::Watchdog]);
}

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        events::systemd_notify_failed(&err);
    }
}
