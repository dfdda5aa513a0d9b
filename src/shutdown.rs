//! SIGTERM / SIGINT become a cancellation token handed to every long-running loop. The first
//! signal asks for a graceful stop; a second one exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::events;

/// Exit status after a second signal: 128 + SIGINT, as shells report an interrupted program.
const EXIT_ON_SECOND_SIGNAL: i32 = 130;

/// Returns a token cancelled on the first SIGTERM or SIGINT. A second signal ends the process
/// immediately (committed data is safe: every batch of pages commits on its own).
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        events::shutdown_requested(first);
        cancel.cancel();
        let second = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        events::shutdown_forced(second);
        std::process::exit(EXIT_ON_SECOND_SIGNAL);
    });
    Ok(token)
}
