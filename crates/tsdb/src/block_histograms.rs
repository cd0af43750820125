//! A block's native histograms: the optional `histograms` file beside `index` and `chunks`
//! (layout in `docs/format/block.md`). One checksummed frame per series, holding its labels and
//! its histograms in time order; a block without histograms has no such file.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use medic_model::{HistogramSample, Label, Labels, Matcher};

use crate::encoding::{crc32, put_bytes, put_uvarint, put_varint, Decoder};
use crate::histogram_codec::{get_histogram, put_histogram};
use crate::postings::matches_all;
use crate::Error;

/// The file's name in a block directory.
pub const FILE: &str = "histograms";
const MAGIC: &[u8; 4] = b"MHST";
const VERSION: u8 = 1;

/// One series' histograms, as written and read.
pub type HistogramSeries = (Labels, Vec<HistogramSample>);

/// Histogram series from several sources (blocks, the head) merged by labels: each series'
/// histograms in time order, one per timestamp (the first source's wins). Sorted by labels.
pub fn merge(sources: Vec<Vec<HistogramSeries>>) -> Vec<HistogramSeries> {
    let mut by_labels: std::collections::BTreeMap<Labels, Vec<HistogramSample>> =
        Default::default();
    for src in sources {
        for (labels, hs) in src {
            by_labels.entry(labels).or_default().extend(hs);
        }
    }
    by_labels
        .into_iter()
        .map(|(labels, mut hs)| {
            hs.sort_by_key(|h| h.t);
            hs.dedup_by_key(|h| h.t);
            (labels, hs)
        })
        .filter(|(_, hs)| !hs.is_empty())
        .collect()
}

/// Writes the `histograms` file of a block being built in `dir` (nothing when `series` holds no
/// histogram). Returns how many series and histograms it holds.
pub fn write(dir: &Path, series: &[HistogramSeries]) -> Result<(u64, u64), Error> {
    let series: Vec<&HistogramSeries> = series.iter().filter(|(_, h)| !h.is_empty()).collect();
    if series.is_empty() {
        return Ok((0, 0));
    }
    let path = dir.join(FILE);
    let mut out = Vec::from(&MAGIC[..]);
    out.push(VERSION);
    let mut body = Vec::new();
    let mut samples = 0u64;
    for (labels, hs) in &series {
        body.clear();
        put_uvarint(&mut body, labels.len() as u64);
        for l in labels.iter() {
            put_bytes(&mut body, l.name.as_bytes());
            put_bytes(&mut body, l.value.as_bytes());
        }
        put_uvarint(&mut body, hs.len() as u64);
        let mut prev = 0i64;
        for h in hs {
            put_varint(&mut body, h.t.wrapping_sub(prev));
            prev = h.t;
            put_histogram(&mut body, &h.h);
        }
        put_uvarint(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
        samples += hs.len() as u64;
    }
    let mut f = File::create(&path).map_err(Error::io("create", &path))?;
    f.write_all(&out).map_err(Error::io("write", &path))?;
    f.sync_all().map_err(Error::io("fsync", &path))?;
    Ok((series.len() as u64, samples))
}

/// An open `histograms` file: the labels of each series and where its frame's body lies.
#[derive(Debug)]
pub struct HistogramFile {
    data: memmap2::Mmap,
    series: Vec<(Labels, Range<usize>)>,
}

impl HistogramFile {
    /// Opens the block's `histograms` file, verifying every frame; `None` when there is none.
    pub fn open(dir: &Path) -> Result<Option<HistogramFile>, String> {
        let path = dir.join(FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("opening {FILE}: {e}")),
        };
        // SAFETY: as for the chunks file — block files are immutable once renamed into place,
        // and medic is the only writer of its data directory.
        let data =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("mapping {FILE}: {e}"))?;
        if data.len() < 5 || &data[..4] != MAGIC || data[4] != VERSION {
            return Err(format!("{FILE} has no valid header"));
        }
        let mut series = Vec::new();
        let mut d = Decoder::new(&data[5..]);
        while !d.is_empty() {
            let start = 5 + d.position();
            let body = d.bytes(FILE).map_err(|e| e.to_string())?;
            let crc = d.be_u32("frame checksum").map_err(|e| e.to_string())?;
            if crc32(body) != crc {
                return Err(format!(
                    "{FILE}: checksum mismatch in the frame at byte {start}"
                ));
            }
            let body_start = 5 + d.position() - 4 - body.len();
            let labels = read_labels(&mut Decoder::new(body)).map_err(|e| e.to_string())?;
            series.push((labels, body_start..body_start + body.len()));
        }
        Ok(Some(HistogramFile { data, series }))
    }

    /// Bytes of the file.
    pub fn bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// Histograms in `[mint, maxt]` of the series matching `matchers`, sorted by labels.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<HistogramSeries>, Error> {
        let mut out = Vec::new();
        for (labels, range) in &self.series {
            if !matches_all(labels, matchers) {
                continue;
            }
            let hs = self.read(range.clone(), mint, maxt)?;
            if !hs.is_empty() {
                out.push((labels.clone(), hs));
            }
        }
        Ok(out)
    }

    fn read(
        &self,
        range: Range<usize>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<HistogramSample>, Error> {
        let mut d = Decoder::new(&self.data[range]);
        read_labels(&mut d)?;
        let n = d.len(d.remaining(), "histogram count")?;
        let mut out = Vec::new();
        let mut t = 0i64;
        for _ in 0..n {
            t = t.wrapping_add(d.varint("histogram timestamp")?);
            let h = get_histogram(&mut d)?;
            if t >= mint && t <= maxt {
                out.push(HistogramSample { t, h: Arc::new(h) });
            }
        }
        Ok(out)
    }
}

fn read_labels(d: &mut Decoder<'_>) -> Result<Labels, Error> {
    let n = d.len(d.remaining(), "label count")?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let name = d.str("label name")?;
        let value = d.str("label value")?;
        labels.push(Label::new(name, value));
    }
    Labels::from_unsorted(labels)
        .map_err(|n| Error::Decode(format!("{FILE}: a series repeats label {n:?}")))
}
