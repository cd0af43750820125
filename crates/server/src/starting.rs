//! What medic answers while it starts (storage opening, the WAL replaying): `/-/healthy` 200,
//! `/-/ready` 503, everything else 503 with `Retry-After` — so a supervisor sees a live process
//! and a load balancer waits, instead of both seeing a refused connection. A standby (`ha`)
//! answers here too while another replica leads: it is ready, and forwards every request to
//! the leader (`crate::ha::standby`).

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::ha::standby::{self, StandbyView};
use crate::Error;

/// The server answering during start-up; stopped (gracefully) when medic is ready.
pub struct Starting {
    /// Who leads, while this replica is a standby.
    pub standby: Arc<StandbyView>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Starting {
    /// Stops answering; in-flight requests get a few seconds to finish (a client that never
    /// finishes its request must not keep medic from starting).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut t) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(3), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        // Start-up failed: stop at once.
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Serves the start-up answers on a clone of `listener` (with the same TLS and limits as the
/// real server); returns the listener for the real server.
pub fn serve_while_starting(
    listener: TcpListener,
    server: impl FnOnce(Router) -> crate::serve::Server,
) -> Result<(TcpListener, Starting), Error> {
    let internal = |e: std::io::Error| Error::Internal(format!("listener: {e}"));
    let std = listener.into_std().map_err(internal)?;
    let early = TcpListener::from_std(std.try_clone().map_err(internal)?).map_err(internal)?;
    let listener = TcpListener::from_std(std).map_err(internal)?;
    let view = Arc::new(StandbyView::default());
    let client = standby::client()?;
    let (ready_view, forward_view) = (view.clone(), view.clone());
    let router = Router::new()
        .route("/-/healthy", get(|| async { "medic is Healthy.\n" }))
        .route("/-/ready", get(move || standby::ready(ready_view.clone())))
        .fallback(move |req: axum::extract::Request| {
            standby::forward(forward_view.clone(), client.clone(), req)
        });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = server(router);
    let task = tokio::spawn(async move {
        let _ = server
            .serve(early, async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((
        listener,
        Starting {
            standby: view,
            stop: Some(stop),
            task: Some(task),
        },
    ))
}
