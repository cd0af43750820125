//! File helpers: hashing readers and writers, synced writes, the destination lock.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::progress::Progress;
use crate::Error;

/// Hashes and counts what is read through it, and reports progress.
pub(crate) struct HashReader<'a, R> {
    pub inner: R,
    pub hash: Sha256,
    pub bytes: u64,
    pub progress: &'a dyn Progress,
}

impl<'a, R: Read> HashReader<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        HashReader {
            inner,
            hash: Sha256::new(),
            bytes: 0,
            progress,
        }
    }

    /// (bytes, hex SHA-256).
    pub fn finish(self) -> (u64, String) {
        (self.bytes, hex(&self.hash.finalize()))
    }
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Hashes and counts what is written through it.
pub(crate) struct HashWriter<W> {
    pub inner: W,
    pub hash: Sha256,
    pub bytes: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (size, hex SHA-256) of a file.
pub(crate) fn hash_file(path: &Path, progress: &dyn Progress) -> Result<(u64, String), Error> {
    let f = File::open(path).map_err(Error::io("open", path))?;
    let mut r = HashReader::new(io::BufReader::with_capacity(1 << 20, f), progress);
    io::copy(&mut r, &mut io::sink()).map_err(Error::io("read", path))?;
    Ok(r.finish())
}

/// fsyncs a directory, so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync", dir))
}

/// Writes `data` to `path` through a temporary file, fsynced and renamed into place.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(data).map_err(Error::io("write", &tmp))?;
    f.sync_all().map_err(Error::io("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Takes `dir/lock` (an OS lock), so one process at a time writes or prunes a destination.
pub(crate) fn lock_destination(dir: &Path) -> Result<File, Error> {
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let path = dir.join("lock");
    let f = File::create(&path).map_err(Error::io("create", &path))?;
    if f.try_lock().is_err() {
        return Err(Error::Refused(format!(
            "{}: another backup or prune is writing to this destination",
            dir.display()
        )));
    }
    Ok(f)
}

/// Every regular file under `root`, as `/`-separated relative paths, sorted.
pub(crate) fn walk(root: &Path) -> Result<Vec<(String, u64)>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let ty = entry.file_type().map_err(Error::io("stat", entry.path()))?;
            let path = entry.path();
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let len = entry.metadata().map_err(Error::io("stat", &path))?.len();
                out.push((rel, len));
            }
        }
    }
    out.sort();
    Ok(out)
}
