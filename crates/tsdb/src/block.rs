//! Persisted blocks: immutable directories holding the samples of a time range.
//!
//! ```text
//! <ULID>/meta.json   what the block covers (JSON)
//! <ULID>/index       symbols, series with their chunk references, checksum
//! <ULID>/chunks      the encoded chunks, each with its own checksum
//! ```
//!
//! A block is written under `<ULID>.tmp` and renamed into place once complete and fsynced, so a
//! crash never leaves a half-written block where the loader looks. The byte layouts are in
//! `docs/format/index.md` and `docs/format/chunks.md`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medic_model::{Label, Labels, Matcher, Sample};
use serde::{Deserialize, Serialize};

use crate::chunkenc::{decode_chunk, encode_chunk, BlockCodec};
use crate::encoding::{crc32, put_bytes, put_uvarint, put_varint, Decoder};
use crate::postings::{matches_all, Postings};
use crate::wal::sync_dir;
use crate::Error;

const INDEX_MAGIC: &[u8; 4] = b"MIDX";
const CHUNKS_MAGIC: &[u8; 4] = b"MCHK";
const FORMAT_VERSION: u8 = 1;

/// `meta.json` of a block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockMeta {
    /// The block's id (a ULID, also its directory name).
    pub ulid: String,
    /// Oldest sample timestamp covered (ms, inclusive).
    pub min_time: i64,
    /// End of the covered range (ms, exclusive).
    pub max_time: i64,
    /// Counts of what the block holds.
    pub stats: BlockStats,
    /// How the block came to be.
    pub compaction: CompactionMeta,
    /// Chunk codec used.
    pub codec: BlockCodec,
    /// Format version.
    pub version: u8,
    /// 0 for raw samples; else the resolution (ms) of a downsampled block, whose series carry
    /// the label `__aggr__` (`crate::downsample`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolution_ms: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Counts in [`BlockMeta`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockStats {
    /// Samples.
    pub num_samples: u64,
    /// Series.
    pub num_series: u64,
    /// Chunks.
    pub num_chunks: u64,
    /// Series with native histograms (in the `histograms` file).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_histogram_series: u64,
    /// Native histograms.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_histograms: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// Lineage in [`BlockMeta`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CompactionMeta {
    /// 1 for a block cut from the head, parents' level + 1 after a merge.
    pub level: u32,
    /// Blocks merged into this one; if they still exist at start-up they are deleted, which
    /// finishes a compaction interrupted after its output was renamed into place.
    #[serde(default)]
    pub parents: Vec<String>,
}

/// Where a chunk lives in the chunks file.
#[derive(Debug, Clone, Copy)]
struct ChunkMeta {
    mint: i64,
    maxt: i64,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct BlockSeries {
    labels: Labels,
    chunks: Vec<ChunkMeta>,
}

/// A block open for reading.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    series: Vec<BlockSeries>,
    postings: Postings,
    chunks: memmap2::Mmap,
    /// The native histograms, when the block has any.
    histograms: Option<crate::block_histograms::HistogramFile>,
    bytes: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// What a new block covers and how to encode it.
#[derive(Debug, Clone)]
pub struct BlockSpec {
    /// Start of the covered range (ms, inclusive).
    pub min_time: i64,
    /// End of the covered range (ms, exclusive).
    pub max_time: i64,
    /// Chunk codec.
    pub codec: BlockCodec,
    /// Most samples per chunk.
    pub chunk_samples: usize,
    /// Compaction level (1 for a block cut from the head).
    pub level: u32,
    /// Blocks merged into this one.
    pub parents: Vec<String>,
    /// 0 for raw samples; else the resolution of the downsampled block written.
    pub resolution_ms: i64,
}

/// Writes a block from series sorted by labels. Returns the final directory, or `None` when
/// there was nothing to write.
pub fn write_block(
    parent: &Path,
    spec: BlockSpec,
    series: impl Iterator<Item = (Labels, Vec<Sample>)>,
    histograms: &[crate::block_histograms::HistogramSeries],
) -> Result<Option<(PathBuf, BlockMeta)>, Error> {
    let BlockSpec {
        min_time,
        max_time,
        codec,
        chunk_samples,
        level,
        parents,
        resolution_ms,
    } = spec;
    let ulid = ulid::Ulid::new().to_string();
    let tmp = parent.join(format!("{ulid}.tmp"));
    let dir = parent.join(&ulid);
    fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
    let result = write_block_files(&tmp, codec, chunk_samples, series).and_then(|mut stats| {
        let (hs, hn) = crate::block_histograms::write(&tmp, histograms)?;
        stats.num_histogram_series = hs;
        stats.num_histograms = hn;
        Ok(stats)
    });
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if stats.num_series == 0 && stats.num_histograms == 0 {
        let _ = fs::remove_dir_all(&tmp);
        return Ok(None);
    }
    let meta = BlockMeta {
        ulid,
        min_time,
        max_time,
        stats,
        compaction: CompactionMeta { level, parents },
        codec,
        version: FORMAT_VERSION,
        resolution_ms,
    };
    let meta_path = tmp.join("meta.json");
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Encode(e.to_string()))?;
    write_synced(&meta_path, &json)?;
    sync_dir(&tmp)?;
    fs::rename(&tmp, &dir).map_err(Error::io("rename", &tmp))?;
    sync_dir(parent)?;
    Ok(Some((dir, meta)))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), Error> {
    let mut f = File::create(path).map_err(Error::io("create", path))?;
    f.write_all(data).map_err(Error::io("write", path))?;
    f.sync_all().map_err(Error::io("fsync", path))
}

fn write_block_files(
    dir: &Path,
    codec: BlockCodec,
    chunk_samples: usize,
    series: impl Iterator<Item = (Labels, Vec<Sample>)>,
) -> Result<BlockStats, Error> {
    let chunks_path = dir.join("chunks");
    let cf = File::create(&chunks_path).map_err(Error::io("create", &chunks_path))?;
    let mut chunks = BufWriter::with_capacity(1 << 20, cf);
    let mut offset: u64 = 0;
    let mut header = Vec::from(&CHUNKS_MAGIC[..]);
    header.push(FORMAT_VERSION);
    chunks
        .write_all(&header)
        .map_err(Error::io("write", &chunks_path))?;
    offset += header.len() as u64;

    let mut stats = BlockStats::default();
    let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
    let mut frame = Vec::new();
    for (labels, samples) in series {
        if samples.is_empty() {
            continue;
        }
        let mut metas = Vec::new();
        // Equal parts, so no chunk is left with a small tail (small chunks compress worse).
        let parts = samples.len().div_ceil(chunk_samples);
        let per_part = samples.len().div_ceil(parts);
        for part in samples.chunks(per_part) {
            let body = encode_chunk(codec, part)?;
            frame.clear();
            put_uvarint(&mut frame, body.len() as u64);
            frame.extend_from_slice(&body);
            frame.extend_from_slice(&crc32(&body).to_be_bytes());
            chunks
                .write_all(&frame)
                .map_err(Error::io("write", &chunks_path))?;
            metas.push(ChunkMeta {
                mint: part[0].t,
                maxt: part[part.len() - 1].t,
                offset,
                len: frame.len() as u32,
            });
            offset += frame.len() as u64;
            stats.num_chunks += 1;
        }
        stats.num_samples += samples.len() as u64;
        stats.num_series += 1;
        entries.push((labels, metas));
    }
    let cf = chunks
        .into_inner()
        .map_err(|e| Error::io("write", &chunks_path)(e.into_error()))?;
    cf.sync_all().map_err(Error::io("fsync", &chunks_path))?;

    // Index: symbols, then series referring to symbols by position.
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (labels, _) in &entries {
        for l in labels.iter() {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    let symbols: Vec<&str> = symbols.into_iter().collect();
    let sym_id = |s: &str| symbols.binary_search(&s).expect("symbol collected") as u64;
    let mut idx = Vec::from(&INDEX_MAGIC[..]);
    idx.push(FORMAT_VERSION);
    put_uvarint(&mut idx, symbols.len() as u64);
    for s in &symbols {
        put_bytes(&mut idx, s.as_bytes());
    }
    put_uvarint(&mut idx, entries.len() as u64);
    for (labels, metas) in &entries {
        put_uvarint(&mut idx, labels.len() as u64);
        for l in labels.iter() {
            put_uvarint(&mut idx, sym_id(&l.name));
            put_uvarint(&mut idx, sym_id(&l.value));
        }
        put_uvarint(&mut idx, metas.len() as u64);
        let mut prev_maxt = 0i64;
        let mut prev_off = 0u64;
        for (i, m) in metas.iter().enumerate() {
            if i == 0 {
                put_varint(&mut idx, m.mint);
            } else {
                put_varint(&mut idx, m.mint - prev_maxt);
            }
            put_uvarint(&mut idx, (m.maxt - m.mint) as u64);
            put_uvarint(&mut idx, m.offset - prev_off);
            put_uvarint(&mut idx, m.len as u64);
            prev_maxt = m.maxt;
            prev_off = m.offset;
        }
    }
    let crc = crc32(&idx);
    idx.extend_from_slice(&crc.to_be_bytes());
    write_synced(&dir.join("index"), &idx)?;
    Ok(stats)
}

impl Block {
    /// Opens a block directory, verifying meta and index checksums. Chunk checksums are verified
    /// as chunks are read.
    pub fn open(dir: &Path) -> Result<Block, Error> {
        let bad = |reason: String| Error::BadBlock {
            path: dir.to_path_buf(),
            reason,
        };
        let meta_path = dir.join("meta.json");
        let meta_bytes =
            fs::read(&meta_path).map_err(|e| bad(format!("reading meta.json: {e}")))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| bad(format!("meta.json does not parse: {e}")))?;
        if meta.version != FORMAT_VERSION {
            return Err(bad(format!("unsupported block version {}", meta.version)));
        }
        let index = fs::read(dir.join("index")).map_err(|e| bad(format!("reading index: {e}")))?;
        let (series, postings) = parse_index(&index).map_err(|e| bad(format!("index: {e}")))?;
        let chunks_path = dir.join("chunks");
        let file = File::open(&chunks_path).map_err(|e| bad(format!("opening chunks: {e}")))?;
        // SAFETY: block files are immutable once renamed into place and medic is the only
        // writer of its data directory (guarded by the directory lock); a file truncated behind
        // our back would fault, as with any mmap-based store.
        let chunks = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| bad(format!("mapping chunks: {e}")))?;
        if chunks.len() < 5 || &chunks[..4] != CHUNKS_MAGIC {
            return Err(bad("chunks file has no valid header".into()));
        }
        let chunks_len = chunks.len() as u64;
        for s in &series {
            for c in &s.chunks {
                if c.offset + c.len as u64 > chunks_len {
                    return Err(bad(format!(
                        "series {} refers past the end of the chunks file",
                        s.labels
                    )));
                }
            }
        }
        let histograms = crate::block_histograms::HistogramFile::open(dir).map_err(bad)?;
        let bytes = (meta_bytes.len() + index.len()) as u64
            + chunks_len
            + histograms.as_ref().map_or(0, |h| h.bytes());
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            series,
            postings,
            chunks,
            histograms,
            bytes,
        })
    }

    /// Native histograms in `[mint, maxt]` of the series matching `matchers`, sorted by labels
    /// (all series when `matchers` is empty).
    pub fn select_histograms(
        &self,
        matchers: &[medic_model::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<crate::block_histograms::HistogramSeries>, Error> {
        match &self.histograms {
            Some(h) => h.select(matchers, mint, maxt),
            None => Ok(Vec::new()),
        }
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the block holds samples in `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && self.meta.max_time > mint
    }

    fn read_chunk(&self, c: &ChunkMeta, out: &mut Vec<Sample>) -> Result<(), Error> {
        let frame = &self.chunks[c.offset as usize..(c.offset + c.len as u64) as usize];
        let mut d = Decoder::new(frame);
        let n = d.len(frame.len(), "chunk length")?;
        let body = d.take(n, "chunk body")?;
        let crc = d.be_u32("chunk checksum")?;
        if crc32(body) != crc {
            return Err(Error::Checksum(format!(
                "chunk at offset {} of {}",
                c.offset,
                self.dir.join("chunks").display()
            )));
        }
        decode_chunk(body, out)
    }

    /// Series matching `matchers` (all when empty) with samples in `[mint, maxt]`, sorted by labels.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, Error> {
        let mut unlimited = usize::MAX;
        self.select_at_most(matchers, mint, maxt, &mut unlimited)
    }

    /// As [`Block::select`], taking the samples decoded out of `budget` and stopping with
    /// [`Error::TooManySamples`] when it runs out.
    pub fn select_at_most(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        budget: &mut usize,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, Error> {
        let limit = *budget;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for id in self.postings.candidates(matchers) {
            let s = &self.series[id as usize];
            if !matches_all(&s.labels, matchers) {
                continue;
            }
            let mut samples = Vec::new();
            for c in &s.chunks {
                if c.maxt < mint || c.mint > maxt {
                    continue;
                }
                buf.clear();
                self.read_chunk(c, &mut buf)?;
                let before = samples.len();
                samples.extend(buf.iter().filter(|x| x.t >= mint && x.t <= maxt));
                let taken = samples.len() - before;
                if taken > *budget {
                    return Err(Error::TooManySamples(limit));
                }
                *budget -= taken;
            }
            if !samples.is_empty() {
                out.push((s.labels.clone(), samples));
            }
        }
        Ok(out)
    }

    /// Label names of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<Arc<str>> {
        if matchers.is_empty() {
            return self.postings.names().cloned().collect();
        }
        let mut names = BTreeSet::new();
        for id in self.postings.candidates(matchers) {
            let s = &self.series[id as usize];
            if matches_all(&s.labels, matchers) {
                names.extend(s.labels.iter().map(|l| l.name.clone()));
            }
        }
        names.into_iter().collect()
    }

    /// Values of `name` among the series matching `matchers`.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<Arc<str>> {
        if matchers.is_empty() {
            return self.postings.values(name).map(|(v, _)| v.clone()).collect();
        }
        let mut values = BTreeSet::new();
        for id in self.postings.candidates(matchers) {
            let s = &self.series[id as usize];
            if matches_all(&s.labels, matchers) {
                if let Some(l) = s.labels.iter().find(|l| &*l.name == name) {
                    values.insert(l.value.clone());
                }
            }
        }
        values.into_iter().collect()
    }

    /// Every series with all its samples, sorted by labels (for tests and tools).
    pub fn all_series(&self) -> Result<Vec<(Labels, Vec<Sample>)>, Error> {
        self.series_iter().collect()
    }

    /// Every series with all its samples, one at a time in label order (for compaction, which
    /// must not hold a whole block in memory).
    pub fn series_iter(&self) -> impl Iterator<Item = Result<(Labels, Vec<Sample>), Error>> + '_ {
        self.series.iter().map(move |s| {
            let mut samples = Vec::new();
            for c in &s.chunks {
                self.read_chunk(c, &mut samples)?;
            }
            Ok((s.labels.clone(), samples))
        })
    }
}

fn parse_index(data: &[u8]) -> Result<(Vec<BlockSeries>, Postings), Error> {
    if data.len() < 9 {
        return Err(Error::Decode("index too short".into()));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32(body) != u32::from_be_bytes(crc.try_into().expect("4")) {
        return Err(Error::Checksum("index".into()));
    }
    let mut d = Decoder::new(body);
    if d.take(4, "magic")? != INDEX_MAGIC {
        return Err(Error::Decode("not a medic index file".into()));
    }
    let version = d.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(Error::Decode(format!(
            "unsupported index version {version}"
        )));
    }
    let max = body.len();
    let nsym = d.len(max, "symbol count")?;
    let mut symbols: Vec<Arc<str>> = Vec::with_capacity(nsym);
    for _ in 0..nsym {
        symbols.push(Arc::from(d.str("symbol")?));
    }
    let sym = |id: u64| -> Result<Arc<str>, Error> {
        symbols
            .get(id as usize)
            .cloned()
            .ok_or_else(|| Error::Decode(format!("symbol {id} out of range")))
    };
    let nseries = d.len(max, "series count")?;
    let mut series = Vec::with_capacity(nseries);
    let mut postings = Postings::default();
    for id in 0..nseries {
        let nl = d.len(max, "label count")?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = sym(d.uvarint("label name")?)?;
            let value = sym(d.uvarint("label value")?)?;
            labels.push(Label { name, value });
        }
        let labels = Labels::from_unsorted(labels)
            .map_err(|n| Error::Decode(format!("series repeats label {n:?}")))?;
        let nc = d.len(max, "chunk count")?;
        let mut chunks = Vec::with_capacity(nc);
        let mut prev_maxt = 0i64;
        let mut prev_off = 0u64;
        for i in 0..nc {
            let mint = if i == 0 {
                d.varint("chunk mint")?
            } else {
                prev_maxt.wrapping_add(d.varint("chunk mint")?)
            };
            let maxt = mint.wrapping_add(d.uvarint("chunk span")? as i64);
            let offset = prev_off.wrapping_add(d.uvarint("chunk offset")?);
            let len = d.len(u32::MAX as usize, "chunk length")? as u32;
            chunks.push(ChunkMeta {
                mint,
                maxt,
                offset,
                len,
            });
            prev_maxt = maxt;
            prev_off = offset;
        }
        postings.add(id as u64, &labels);
        series.push(BlockSeries { labels, chunks });
    }
    if !d.is_empty() {
        return Err(Error::Decode("trailing bytes after series".into()));
    }
    Ok((series, postings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min_time: i64, max_time: i64, codec: BlockCodec) -> BlockSpec {
        BlockSpec {
            min_time,
            max_time,
            codec,
            chunk_samples: 128,
            level: 1,
            parents: vec![],
            resolution_ms: 0,
        }
    }

    fn data() -> Vec<(Labels, Vec<Sample>)> {
        (0..20)
            .map(|i| {
                let l =
                    Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:02}"))]);
                let s = (0..300)
                    .map(|t| Sample::new(t * 1000, (t * i) as f64))
                    .collect();
                (l, s)
            })
            .collect()
    }

    #[test]
    fn write_open_select_for_both_codecs() {
        for codec in [BlockCodec::Xor, BlockCodec::Pco] {
            let dir = tempfile::tempdir().unwrap();
            let (path, meta) =
                write_block(dir.path(), spec(0, 300_000, codec), data().into_iter(), &[])
                    .unwrap()
                    .unwrap();
            assert_eq!(meta.stats.num_samples, 6000);
            assert_eq!(meta.stats.num_chunks, 20 * 3);
            let b = Block::open(&path).unwrap();
            let got = b
                .select(&[Matcher::parse(r#"i=~"0[3-4]""#).unwrap()], 10_000, 20_000)
                .unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0.get("i"), Some("03"));
            assert_eq!(got[0].1.len(), 11);
            assert_eq!(got[1].1[0], Sample::new(10_000, 40.0));
            assert_eq!(b.label_values("i", &[]).len(), 20);
        }
    }

    #[test]
    fn corrupt_index_or_chunk_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_block(
            dir.path(),
            spec(0, 1, BlockCodec::Pco),
            data().into_iter(),
            &[],
        )
        .unwrap()
        .unwrap();
        // A flipped byte in a chunk: open succeeds, reading that chunk fails.
        let chunks = path.join("chunks");
        let mut c = fs::read(&chunks).unwrap();
        c[40] ^= 0xff;
        fs::write(&chunks, &c).unwrap();
        let b = Block::open(&path).unwrap();
        assert!(b.all_series().is_err());
        // A flipped byte in the index: open fails.
        let idx = path.join("index");
        let mut i = fs::read(&idx).unwrap();
        i[10] ^= 0xff;
        fs::write(&idx, &i).unwrap();
        let e = Block::open(&path).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
