//! [`Db::snapshot`]: a consistent copy of the store for backups, taken while it runs.

use std::fs;
use std::path::Path;

use tracing::info;

use super::Db;
use crate::block;
use crate::Error;

/// What [`Db::snapshot`] wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SnapshotSummary {
    /// Blocks linked (or copied) from the store.
    pub blocks: usize,
    /// Blocks written from the head.
    pub head_blocks: usize,
    /// Samples in the head blocks.
    pub head_samples: u64,
}

impl Db {
    /// Writes a snapshot of the store into `dir` (created; must be on the same file system
    /// for hard links, else blocks are copied): every block, hard-linked, and the head's
    /// samples written as blocks, one per block range, each ending at the newest sample so a
    /// store opened on them accepts new samples at once. Holds the maintenance lock, so no
    /// block is cut, merged or deleted meanwhile; appends go on. Every sample committed before
    /// the call is in the snapshot.
    pub fn snapshot(&self, dir: &Path) -> Result<SnapshotSummary, Error> {
        let _g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let mut summary = SnapshotSummary::default();
        for b in self.blocks() {
            link_block(b.dir(), &dir.join(&b.meta().ulid))?;
            summary.blocks += 1;
        }
        let series = self.head.select(&[]);
        if let Some(oldest) = self.head.oldest_sample() {
            let max = self.head.max_time();
            let range = self.opts.block_range_ms;
            let mut start = oldest.div_euclid(range) * range;
            while start <= max {
                let mint = start.max(self.head.min_time());
                let maxt = (start + range).min(max + 1);
                let iter = series.iter().filter_map(|s| {
                    let samples = s.samples(mint, maxt - 1);
                    (!samples.is_empty()).then(|| (s.labels().clone(), samples))
                });
                let hists = self.head.histograms_of(&series, mint, maxt - 1);
                let spec = self.block_spec(mint, maxt, 1, Vec::new());
                if let Some((_, meta)) = block::write_block(dir, spec, iter, &hists)? {
                    summary.head_blocks += 1;
                    summary.head_samples += meta.stats.num_samples;
                }
                start += range;
            }
        }
        info!(dir = %dir.display(), blocks = summary.blocks, head_blocks = summary.head_blocks,
              head_samples = summary.head_samples, "storage snapshot written");
        Ok(summary)
    }
}

/// Hard-links the files of block `from` into `to` (copies them across file systems).
fn link_block(from: &Path, to: &Path) -> Result<(), Error> {
    fs::create_dir_all(to).map_err(Error::io("create", to))?;
    for entry in fs::read_dir(from).map_err(Error::io("list", from))? {
        let entry = entry.map_err(Error::io("list", from))?;
        let src = entry.path();
        if !src.is_file() {
            continue;
        }
        let dst = to.join(entry.file_name());
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).map_err(Error::io("copy", &src))?;
        }
    }
    Ok(())
}
