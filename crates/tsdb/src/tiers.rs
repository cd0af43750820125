//! Downsampled tiers in the store: which raw blocks to downsample, writing the tier blocks, and
//! which tier a block belongs to (`crate::downsample` has the aggregation).

use std::sync::Arc;

use tracing::info;

use super::Db;
use crate::block::{self, Block};
use crate::compact;
use crate::downsample;
use crate::Error;

impl Db {
    /// The resolutions blocks exist at: 0 (raw) and each tier's.
    pub(super) fn resolutions(&self) -> Vec<i64> {
        std::iter::once(0)
            .chain(self.opts.tiers.iter().map(|t| t.resolution_ms))
            .collect()
    }

    /// Whether a raw block is final: its top compaction window lies before the head, so no
    /// merge will replace it.
    fn is_final(&self, b: &Block) -> bool {
        let ranges =
            compact::level_ranges(self.opts.block_range_ms, self.opts.effective_max_block_ms());
        let top = *ranges.last().unwrap_or(&self.opts.block_range_ms);
        let window_end = (b.meta().min_time.div_euclid(top) + 1) * top;
        window_end <= self.head.min_time() || b.meta().max_time - b.meta().min_time >= top
    }

    /// Whether some block at `resolution` covers `[min, max)`.
    pub(super) fn covered(blocks: &[Arc<Block>], resolution: i64, min: i64, max: i64) -> bool {
        blocks.iter().any(|t| {
            t.meta().resolution_ms == resolution
                && t.meta().min_time <= min
                && t.meta().max_time >= max
        })
    }

    /// Writes a tier block for every final raw block no block of that tier covers yet.
    /// Returns how many were written.
    pub(super) fn downsample(&self) -> Result<usize, Error> {
        let mut written = 0;
        for tier in self.opts.tiers.clone() {
            let blocks = self.blocks();
            for b in blocks.iter().filter(|b| b.meta().resolution_ms == 0) {
                let (min, max) = (b.meta().min_time, b.meta().max_time);
                if !self.is_final(b) || Db::covered(&blocks, tier.resolution_ms, min, max) {
                    continue;
                }
                let res = tier.resolution_ms;
                let mut failed = None;
                let series = b.series_iter().filter_map(|s| match s {
                    Ok((labels, samples)) => {
                        Some(downsample::downsampled_series(&labels, &samples, res))
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                        None
                    }
                });
                // Series of one raw series stay sorted among themselves, but `__aggr__` sorts
                // among the other labels: sort the block's series as a whole.
                let mut all: Vec<_> = series.flatten().collect();
                if let Some(e) = failed {
                    return Err(e);
                }
                all.sort_by(|a, b| a.0.cmp(&b.0));
                let mut spec = self.block_spec(min, max, 1, vec![b.meta().ulid.clone()]);
                spec.resolution_ms = res;
                if let Some((path, meta)) =
                    block::write_block(&self.dir, spec, all.into_iter(), &[])?
                {
                    info!(block = %meta.ulid, source = %b.meta().ulid, resolution_ms = res,
                          series = meta.stats.num_series, samples = meta.stats.num_samples,
                          "downsampled block");
                    self.metrics.blocks_written.inc();
                    self.add_block(Arc::new(Block::open(&path)?));
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    /// Whether retention may delete raw block `b`: no tiers, or every tier holds its data.
    pub(super) fn downsampled_everywhere(&self, blocks: &[Arc<Block>], b: &Block) -> bool {
        let (min, max) = (b.meta().min_time, b.meta().max_time);
        b.meta().resolution_ms != 0
            || self
                .opts
                .tiers
                .iter()
                .all(|t| Db::covered(blocks, t.resolution_ms, min, max))
    }

    /// How long blocks at `resolution` are kept (ms; 0 = forever).
    pub(super) fn retention_at(&self, resolution: i64) -> i64 {
        if resolution == 0 {
            return self.opts.retention_ms;
        }
        self.opts
            .tiers
            .iter()
            .find(|t| t.resolution_ms == resolution)
            .map_or(0, |t| t.retention_ms)
    }
}
