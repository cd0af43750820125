//! The Numenta Anomaly Benchmark: running medic's detector over NAB's corpus exactly as it
//! runs in production, writing NAB-format result files, and scoring them.
//!
//! The scorer is written from NAB's scoring rules (the benchmark's README and
//! `nab/scorer.py`): probation, scaled-sigmoid weights per row, the three profiles, one
//! threshold per profile optimised over the whole corpus, and normalisation between the null
//! and the perfect detector.
//!
//! Two ways of turning scores into detections are scored:
//! - [`Detections::Rows`]: NAB's own — every row whose score is at or above the threshold;
//! - [`Detections::Episodes`]: medic's — a row is a detection when it starts an anomaly episode
//!   at that threshold (repeat suppression, [`crate::Episode`]), i.e. exactly when medic would
//!   raise an alert. This is what users get.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Detector, Episode, Params};

/// A NAB file or directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// NAB's timestamp format, `2014-04-01 00:00:00` with optional fraction, as Unix ms (UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let dt: jiff::civil::DateTime = s.replacen(' ', "T", 1).parse().ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_millisecond())
}

fn format_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// One series: `timestamp,value` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Path relative to the data directory, as NAB names it (`realKnownCause/nyc_taxi.csv`).
    pub name: String,
    pub times: Vec<i64>,
    pub values: Vec<f64>,
}

/// Reads one NAB data file.
pub fn read_series(path: &Path, name: &str) -> Result<Series, Error> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut s = Series {
        name: name.to_string(),
        times: Vec::new(),
        values: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let err = |message: String| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| err("want timestamp,value".into()))?;
        let t = parse_time(t).ok_or_else(|| err(format!("bad timestamp {t:?}")))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| err(format!("bad value {v:?}")))?;
        s.times.push(t);
        s.values.push(v);
    }
    Ok(s)
}

/// Every `*.csv` one directory level under `dir` (NAB's `data/<category>/<file>.csv`), sorted.
pub fn read_corpus(dir: &Path) -> Result<Vec<Series>, Error> {
    let mut out = Vec::new();
    let mut cats: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cats.sort();
    for cat in cats {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cat)
            .map_err(io(&cat))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        for f in files {
            let name = format!(
                "{}/{}",
                cat.file_name().unwrap_or_default().to_string_lossy(),
                f.file_name().unwrap_or_default().to_string_lossy()
            );
            out.push(read_series(&f, &name)?);
        }
    }
    if out.is_empty() {
        return Err(Error::Other(format!(
            "{}: no <category>/<file>.csv data files",
            dir.display()
        )));
    }
    Ok(out)
}

/// Labelled windows by file: NAB's `combined_windows.json`, as Unix ms.
pub type Windows = BTreeMap<String, Vec<(i64, i64)>>;

/// Reads `combined_windows.json`.
pub fn read_windows(path: &Path) -> Result<Windows, Error> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let raw: BTreeMap<String, Vec<Vec<String>>> =
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })?;
    let mut out = Windows::new();
    for (file, ws) in raw {
        let mut v = Vec::new();
        for w in ws {
            let bad = || Error::Other(format!("{}: {file}: bad window {w:?}", path.display()));
            if w.len() != 2 {
                return Err(bad());
            }
            let s = parse_time(&w[0]).ok_or_else(bad)?;
            let e = parse_time(&w[1]).ok_or_else(bad)?;
            v.push((s, e));
        }
        out.insert(file, v);
    }
    Ok(out)
}

/// The detector's output for one series.
#[derive(Debug, Clone)]
pub struct Scored {
    pub series: Series,
    pub scores: Vec<f64>,
}

/// Runs a fresh detector over each series, one point at a time, as rules do in production.
pub fn detect(corpus: Vec<Series>, params: &Params) -> Vec<Scored> {
    corpus
        .into_iter()
        .map(|series| {
            let mut d = Detector::new();
            let scores = series
                .times
                .iter()
                .zip(&series.values)
                .map(|(&t, &v)| d.update(params, t, v).map(|p| p.score).unwrap_or(0.0))
                .collect();
            Scored { series, scores }
        })
        .collect()
}

/// Writes NAB result files: `<out>/medic/<category>/medic_<file>.csv` with
/// `timestamp,value,anomaly_score,label` (`label` 1 inside a labelled window), plus `alert`:
/// 1 where medic would raise an alert at `threshold`.
pub fn write_results(
    out: &Path,
    scored: &[Scored],
    windows: Option<&Windows>,
    params: &Params,
) -> Result<usize, Error> {
    let mut written = 0;
    for s in scored {
        let (cat, file) = s
            .series
            .name
            .split_once('/')
            .unwrap_or(("", &s.series.name));
        let dir = out.join("medic").join(cat);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("medic_{file}"));
        let ws = windows.and_then(|w| w.get(&s.series.name));
        let alerts = episode_starts(
            &s.series.times,
            &s.scores,
            params.threshold,
            params.settle_ms,
        );
        let mut text = String::from("timestamp,value,anomaly_score,label,alert\n");
        for (i, ((t, v), score)) in s
            .series
            .times
            .iter()
            .zip(&s.series.values)
            .zip(&s.scores)
            .enumerate()
        {
            let label = ws.is_some_and(|ws| ws.iter().any(|(a, b)| a <= t && t <= b));
            let _ = writeln!(
                text,
                "{},{v},{score:.6},{},{}",
                format_time(*t),
                u8::from(label),
                u8::from(alerts[i])
            );
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        written += 1;
    }
    Ok(written)
}

/// Rows that start an anomaly episode at `threshold`.
pub fn episode_starts(times: &[i64], scores: &[f64], threshold: f64, settle_ms: i64) -> Vec<bool> {
    let mut e = Episode::default();
    times
        .iter()
        .zip(scores)
        .map(|(&t, &s)| e.step(t, s, threshold, settle_ms))
        .collect()
}

/// A scoring profile: NAB's cost matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    },
];

/// How scores become detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detections {
    /// NAB's: every row at or above the threshold.
    Rows,
    /// medic's: rows that start an anomaly episode (an alert) at the threshold.
    Episodes { settle_ms: i64 },
}

/// NAB's scaled sigmoid.
fn sigma(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// NAB's probation: the first 15% of a file's rows, at most 750, are not scored.
fn probation(rows: usize) -> usize {
    ((0.15 * rows as f64).floor() as usize).min(750)
}

/// One file prepared for scoring: each row's weight and window.
struct Prepared {
    probation: usize,
    /// Per row: the window it lies in, if any.
    window: Vec<Option<usize>>,
    /// Per row: u, its worth if detected (see the module docs).
    worth: Vec<f64>,
    windows: usize,
}

fn prepare(times: &[i64], windows: &[(i64, i64)]) -> Prepared {
    let n = times.len();
    let probation = probation(n);
    // Windows as row ranges.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &(ws, we) in windows {
        let s = times.partition_point(|&t| t < ws);
        let e = times.partition_point(|&t| t <= we);
        if e > s {
            ranges.push((s, e - 1));
        }
    }
    ranges.sort();
    let mut window = vec![None; n];
    let mut worth = vec![-1.0; n];
    let mut prev: Option<(usize, usize)> = None;
    let mut k = 0;
    for i in 0..n {
        while k < ranges.len() && ranges[k].1 < i {
            prev = Some(ranges[k]);
            k += 1;
        }
        if k < ranges.len() && ranges[k].0 <= i {
            let (s, e) = ranges[k];
            let w = (e - s + 1) as f64;
            window[i] = Some(k);
            worth[i] = sigma(-((e - i + 1) as f64) / w);
        } else if let Some((s, e)) = prev {
            let w = (e - s + 1) as f64;
            worth[i] = if w > 1.0 {
                sigma((i - e) as f64 / (w - 1.0))
            } else {
                -1.0
            };
        }
    }
    Prepared {
        probation,
        window,
        worth,
        windows: ranges.len(),
    }
}

/// Counts and the raw score of one threshold over the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    pub threshold: f64,
    pub raw: f64,
    pub normalised: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Scores of a detector over a labelled corpus.
pub struct Scorer {
    files: Vec<(Prepared, Vec<i64>, Vec<f64>)>,
    windows: usize,
}

impl Scorer {
    /// Prepares scored series against their labelled windows; files without an entry in
    /// `windows` are an error (NAB scores every file of the corpus).
    pub fn new(scored: &[Scored], windows: &Windows) -> Result<Scorer, Error> {
        let mut files = Vec::new();
        let mut total = 0;
        for s in scored {
            let ws = windows.get(&s.series.name).ok_or_else(|| {
                Error::Other(format!("{}: not in the labelled windows", s.series.name))
            })?;
            let p = prepare(&s.series.times, ws);
            total += p.windows;
            files.push((p, s.series.times.clone(), s.scores.clone()));
        }
        Ok(Scorer {
            files,
            windows: total,
        })
    }

    /// Labelled windows in the corpus.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// The outcome at one threshold.
    pub fn score(&self, profile: &Profile, det: Detections, threshold: f64) -> Outcome {
        let sigma1 = sigma(-1.0);
        let mut out = Outcome {
            threshold,
            ..Outcome::default()
        };
        for (p, times, scores) in &self.files {
            let detected: Vec<bool> = match det {
                Detections::Rows => scores.iter().map(|&s| s >= threshold).collect(),
                Detections::Episodes { settle_ms } => {
                    episode_starts(times, scores, threshold, settle_ms)
                }
            };
            let mut best = vec![f64::NEG_INFINITY; p.windows];
            for (i, &d) in detected.iter().enumerate() {
                if !d || i < p.probation {
                    continue;
                }
                match p.window[i] {
                    Some(k) => best[k] = best[k].max(p.worth[i]),
                    None => {
                        out.raw += profile.fp * p.worth[i];
                        out.fp += 1;
                    }
                }
            }
            for b in best {
                if b.is_finite() {
                    out.raw += profile.tp * b / sigma1;
                    out.tp += 1;
                } else {
                    out.raw -= profile.fn_;
                    out.fn_ += 1;
                }
            }
        }
        let w = self.windows as f64;
        let null = -profile.fn_ * w;
        let perfect = profile.tp * w;
        out.normalised = 100.0 * (out.raw - null) / (perfect - null);
        out
    }

    /// NAB's threshold search: the threshold that maximises the corpus score (ties → the
    /// higher one). Candidates are every score rounded to 0.001, and 1.1 (no detections).
    pub fn optimise(&self, profile: &Profile, det: Detections) -> Outcome {
        let mut candidates: Vec<i64> = self
            .files
            .iter()
            .flat_map(|(_, _, s)| s.iter().map(|v| (v * 1000.0).round() as i64))
            .collect();
        candidates.push(1100);
        candidates.sort_unstable();
        candidates.dedup();
        let mut best: Option<Outcome> = None;
        for c in candidates.into_iter().rev() {
            let o = self.score(profile, det, c as f64 / 1000.0);
            if best.is_none_or(|b| o.raw > b.raw) {
                best = Some(o);
            }
        }
        best.unwrap_or_default()
    }
}

/// Reads NAB result files under `dir` (`<detector>/<category>/<detector>_<file>.csv`, or
/// `<category>/<file>.csv`) — medic's or any other detector's — taking the `timestamp` and
/// `anomaly_score` columns. Names are given back as NAB's data files are named.
pub fn read_results(dir: &Path) -> Result<Vec<Scored>, Error> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let p = e.map_err(io(&d))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "csv") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let cat = p
            .parent()
            .and_then(Path::file_name)
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let file = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        // NAB prefixes result files with the detector's directory name.
        let detector = p
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|d| format!("{}_", d.to_string_lossy()))
            .unwrap_or_default();
        let file = file.strip_prefix(&detector).unwrap_or(&file).to_string();
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| Error::Parse {
                    path: p.clone(),
                    line: 1,
                    message: format!("no {name:?} column"),
                })
        };
        let (tc, sc, vc) = (col("timestamp")?, col("anomaly_score")?, col("value").ok());
        let mut s = Scored {
            series: Series {
                name: format!("{cat}/{file}"),
                times: Vec::new(),
                values: Vec::new(),
            },
            scores: Vec::new(),
        };
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            let err = |message: String| Error::Parse {
                path: p.clone(),
                line: i + 2,
                message,
            };
            let t = f
                .get(tc)
                .and_then(|t| parse_time(t))
                .ok_or_else(|| err("bad timestamp".into()))?;
            let score: f64 = f
                .get(sc)
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| err("bad anomaly_score".into()))?;
            let v = vc
                .and_then(|c| f.get(c))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN);
            s.series.times.push(t);
            s.series.values.push(v);
            s.scores.push(score);
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(Error::Other(format!("{}: no result files", dir.display())));
    }
    Ok(out)
}

/// One line of a NAB report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub profile: &'static str,
    /// How the threshold was chosen and how detections were counted.
    pub method: &'static str,
    pub outcome: Outcome,
}

/// The scores of one run: for each profile, NAB's threshold search over rows, the same over
/// medic's alerts, and medic's fixed default threshold over its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub files: usize,
    pub windows: usize,
    pub rows: Vec<ReportRow>,
    /// Alerts at the default threshold on `artificialNoAnomaly` files (after probation).
    pub no_anomaly_alerts: Option<usize>,
}

/// Scores a run. `default` is the detector's own threshold and settle time; `None` scores
/// rows only (result files of another detector).
pub fn report(
    scored: &[Scored],
    windows: &Windows,
    default: Option<&Params>,
) -> Result<Report, Error> {
    let sc = Scorer::new(scored, windows)?;
    let mut rows = Vec::new();
    for pr in &PROFILES {
        rows.push(ReportRow {
            profile: pr.name,
            method: "NAB threshold search, every row at or above it",
            outcome: sc.optimise(pr, Detections::Rows),
        });
        if let Some(p) = default {
            let alerts = Detections::Episodes {
                settle_ms: p.settle_ms,
            };
            rows.push(ReportRow {
                profile: pr.name,
                method: "NAB threshold search, medic's alerts",
                outcome: sc.optimise(pr, alerts),
            });
            rows.push(ReportRow {
                profile: pr.name,
                method: "medic's default threshold, medic's alerts",
                outcome: sc.score(pr, alerts, p.threshold),
            });
        }
    }
    let no_anomaly_alerts = default.map(|p| {
        scored
            .iter()
            .filter(|s| s.series.name.starts_with("artificialNoAnomaly/"))
            .map(|s| {
                episode_starts(&s.series.times, &s.scores, p.threshold, p.settle_ms)
                    .iter()
                    .skip(probation(s.scores.len()))
                    .filter(|a| **a)
                    .count()
            })
            .sum()
    });
    Ok(Report {
        files: scored.len(),
        windows: sc.windows(),
        rows,
        no_anomaly_alerts,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} files, {} labelled windows", self.files, self.windows)?;
        writeln!(
            f,
            "{:<20} {:<48} {:>9} {:>6} {:>5} {:>5} {:>5}",
            "PROFILE", "METHOD", "THRESHOLD", "SCORE", "TP", "FP", "FN"
        )?;
        for r in &self.rows {
            let o = &r.outcome;
            writeln!(
                f,
                "{:<20} {:<48} {:>9.3} {:>6.1} {:>5} {:>5} {:>5}",
                r.profile, r.method, o.threshold, o.normalised, o.tp, o.fp, o.fn_
            )?;
        }
        if let Some(n) = self.no_anomaly_alerts {
            writeln!(
                f,
                "alerts on artificialNoAnomaly at the default threshold: {n}"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_nabs() {
        assert!((sigma(-1.0) - 0.986_614).abs() < 1e-6);
        assert_eq!(sigma(0.0), 0.0);
        assert_eq!(sigma(3.5), -1.0);
    }

    #[test]
    fn times_parse_as_nab_writes_them() {
        assert_eq!(parse_time("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            parse_time("2014-04-10 07:15:00.000000"),
            Some(1_397_114_100_000)
        );
        assert_eq!(format_time(1_397_114_100_000), "2014-04-10 07:15:00");
        assert_eq!(parse_time("yesterday"), None);
    }
}
