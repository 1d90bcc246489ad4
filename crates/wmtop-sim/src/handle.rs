//! A simulator running in the caller's process: started on the current tokio runtime
//! ([`spawn`]) and controlled through its [`SimHandle`] (its address, the faults in force,
//! what it has answered, a graceful stop).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Faults, SimConfig};
use crate::server::{serve_state, SeriesRequest, SimStats, State};

/// A simulator running on the current tokio runtime.
#[derive(Debug)]
pub struct SimHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// The base URL, `http://127.0.0.1:PORT`; both the Keycloak URL and the API base.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, f: Faults) {
        self.state.set_faults(f);
    }

    /// The faults in force (counters as they stand now).
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// What has been answered so far.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// The series requests answered so far, oldest first (the last thousand).
    pub fn requests(&self) -> Vec<SeriesRequest> {
        self.state.requests()
    }

    /// Stops accepting, lets open requests finish (for a few seconds at most) and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "simulator stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "simulator task failed"),
        }
    }
}

/// Binds 127.0.0.1:0, serves `cfg` on a task of the current runtime, and returns a handle.
pub async fn spawn(cfg: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(cfg));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_state(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(SimHandle {
        addr,
        state,
        stop,
        task,
    })
}
