//! The one HTTP server helper: accepts connections on a listener, serves each with a
//! handler over HTTP/1.1, and on shutdown stops accepting, lets open requests finish for a
//! few seconds at most, then closes what is left. /health and /metrics and the simulator
//! both serve with it.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How long open requests may run on after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `handler` on `listener` until `shutdown` completes. `name` says which server
/// in log lines.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
    name: &'static str,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handler = handler.clone();
                    let mut stop_rx = stop_rx.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| {
                            let h = handler.clone();
                            async move { Ok::<_, Infallible>(h(req).await) }
                        });
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        tokio::pin!(conn);
                        let stop = async move {
                            let _ = stop_rx.wait_for(|stop| *stop).await;
                        };
                        let result = tokio::select! {
                            r = conn.as_mut() => r,
                            () = stop => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "{name}: connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{name}: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        conns.abort_all();
    }
    Ok(())
}
