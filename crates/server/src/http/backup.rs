//! The backup API under `/api/v1/medic/backup` (admin only; docs/backup.md): snapshots of
//! the running medic that `medic backup create` copies file by file, and the state of
//! scheduled backups.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::{medic_err, medic_ok};
use super::AppState;

/// Most bytes one file request returns; the client asks again from the next offset.
const MAX_PIECE: u64 = 8 << 20;

/// `POST /api/v1/medic/backup/snapshots`: takes a snapshot (blocks linked, the head written
/// as blocks, SQLite copied online, the config and its files) and lists its files.
pub(super) async fn create_snapshot(State(st): State<Arc<AppState>>) -> Response {
    match st.backups.take(&st).await {
        Ok(s) => medic_ok(json!({
            "id": s.id,
            "began_ms": s.began_ms,
            "files": s.files,
        })),
        Err(e) => medic_err(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `DELETE /api/v1/medic/backup/snapshots/{id}`: releases a snapshot.
pub(super) async fn delete_snapshot(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    if st.backups.release(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        medic_err(StatusCode::NOT_FOUND, format!("no snapshot {id:?}"))
    }
}

/// `GET /api/v1/medic/backup/snapshots/{id}/file?path=P&offset=O&length=L`: up to 8 MiB of
/// one file of a snapshot. `path` must be one the snapshot listed.
pub(super) async fn read_file(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let mut path = None;
    let mut offset = 0u64;
    let mut length = MAX_PIECE;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        let num = |what: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{what}: {v:?} is not a byte count"))
        };
        let parsed = match k.as_ref() {
            "path" => {
                path = Some(v.to_string());
                Ok(())
            }
            "offset" => num("offset").map(|n| offset = n),
            "length" => num("length").map(|n| length = n.min(MAX_PIECE)),
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            return medic_err(StatusCode::BAD_REQUEST, e);
        }
    }
    let Some(path) = path else {
        return medic_err(StatusCode::BAD_REQUEST, "path: missing");
    };
    let Some(snap) = st.backups.get(&id) else {
        return medic_err(StatusCode::NOT_FOUND, format!("no snapshot {id:?}"));
    };
    // Only a file the snapshot listed: nothing else on disk can be named.
    let Some(file) = snap.files.iter().find(|f| f.path == path) else {
        return medic_err(
            StatusCode::NOT_FOUND,
            format!("snapshot {id} has no file {path:?}"),
        );
    };
    let full = snap.dir.join(&file.path);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(&full)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.take(length).read_to_end(&mut buf)?;
        Ok(buf)
    })
    .await;
    match read {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(Err(e)) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: {e}")),
        Err(e) => medic_err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/medic/backup/status`: the schedule and the last scheduled backup.
pub(super) async fn status(State(st): State<Arc<AppState>>) -> Response {
    let cfg = &st.config.backup;
    let last = st
        .backups
        .last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let last = last.map(|(at, r)| match r {
        Ok(v) => json!({"ended_ms": at, "ok": true, "summary": v}),
        Err(e) => json!({"ended_ms": at, "ok": false, "error": e}),
    });
    medic_ok(json!({
        "destination": cfg.destination,
        "interval": cfg.interval.to_string(),
        "keep": cfg.keep,
        "encrypted": !cfg.encrypt_to.is_empty(),
        "last": last,
    }))
}
