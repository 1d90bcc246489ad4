//! Stopping on a signal: SIGINT, SIGTERM and SIGHUP (an ssh session dropping) turn a
//! watch flag true, so a run flushes, commits and prints its summary; the exit code says
//! which signal it was (128 + its number).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

pub struct Signals {
    pub stop: watch::Receiver<bool>,
    which: Arc<AtomicU8>,
}

impl Signals {
    /// Listens for the signals from now on.
    pub fn listen() -> Signals {
        let (tx, rx) = watch::channel(false);
        let which = Arc::new(AtomicU8::new(0));
        let w = Arc::clone(&which);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::warn!("cannot listen for signals");
                return;
            };
            let (n, name) = tokio::select! {
                _ = int.recv() => (2, "SIGINT"),
                _ = term.recv() => (15, "SIGTERM"),
                _ = hup.recv() => (1, "SIGHUP"),
            };
            tracing::info!("{name}: stopping, flushing what is held and committing");
            w.store(n, Ordering::Relaxed);
            let _ = tx.send(true);
        });
        Signals { stop: rx, which }
    }

    /// The signal that stopped the run, if one did.
    pub fn received(&self) -> Option<u8> {
        match self.which.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// 128 + the signal number, as shells report a run a signal ended.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(128 + self.received().unwrap_or(2))
    }
}
