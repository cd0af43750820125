//! The formats logs arrive in: Loki's push API (`loki`) and OTLP/HTTP logs (`otlp`). Each
//! decoder turns a request body into a [`Push`](crate::Push); the store redacts and checks it.

pub mod loki;
pub mod otlp;
pub mod syslog;

/// A body that could not be decoded, saying where.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid JSON at {path}: {msg}")]
    Json { path: String, msg: String },
    #[error("invalid protobuf: {0}")]
    Proto(String),
    #[error("invalid snappy compression: {0}")]
    Snappy(String),
    #[error("{field}: {msg}")]
    Field { field: String, msg: String },
}

/// Largest decompressed body accepted (the compressed size is limited by the HTTP layer).
pub const MAX_DECOMPRESSED: usize = 64 << 20;

/// Snappy block decompression with a size check before allocating.
pub fn snappy(body: &[u8]) -> Result<Vec<u8>, IngestError> {
    let n = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy(e.to_string()))?;
    if n > MAX_DECOMPRESSED {
        return Err(IngestError::Snappy(format!(
            "decompressed size {n} exceeds {MAX_DECOMPRESSED} bytes"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy(e.to_string()))
}
