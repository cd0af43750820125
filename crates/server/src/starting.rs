//! What medic answers while it starts (storage opening, the WAL replaying): `/-/healthy` 200,
//! `/-/ready` 503, everything else 503 with `Retry-After` — so a supervisor sees a live process
//! and a load balancer waits, instead of both seeing a refused connection.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Error;

/// The server answering during start-up; stopped (gracefully) when medic is ready.
pub struct Starting {
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
    let router = Router::new()
        .route("/-/healthy", get(|| async { "medic is Healthy.\n" }))
        .route(
            "/-/ready",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "medic is not ready: opening storage (replaying the WAL), or a standby waiting for the leader lease.\n",
                )
            }),
        )
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "medic is starting: opening storage (replaying the WAL), or a standby waiting for the leader lease; try again shortly.\n",
            )
                .into_response()
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
            stop: Some(stop),
            task: Some(task),
        },
    ))
}
