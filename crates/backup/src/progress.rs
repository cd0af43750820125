//! How long operations report how far they are (the CLI draws bars; the server logs).

/// Told of the bytes a long operation has moved.
pub trait Progress: Sync {
    /// A phase starts, moving `total` bytes.
    fn begin(&self, _phase: &str, _total: u64) {}
    /// `bytes` more were moved.
    fn advance(&self, _bytes: u64) {}
    /// The phase ended.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
