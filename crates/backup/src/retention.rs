//! Which backups to keep (`keep` N last, daily, weekly, monthly — restic's and Borg's rule),
//! and pruning the rest with the blocks no kept backup holds.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::manifest::{self, BACKUPS, BLOCKS};
use crate::{fsutil, Error};

/// A retention policy. All zero keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// The newest N backups.
    #[serde(default)]
    pub last: usize,
    /// The newest backup of each of the last N days (UTC) that have one.
    #[serde(default)]
    pub daily: usize,
    /// The newest backup of each of the last N ISO weeks that have one.
    #[serde(default)]
    pub weekly: usize,
    /// The newest backup of each of the last N months that have one.
    #[serde(default)]
    pub monthly: usize,
}

impl Keep {
    /// Whether the policy keeps everything.
    pub fn keeps_all(&self) -> bool {
        *self == Keep::default()
    }
}

/// The backups `keep` keeps, from `(id, created_ms)`. Pure. The newest backup is always kept.
pub fn select(backups: &[(String, i64)], keep: &Keep) -> BTreeSet<String> {
    let mut newest_first: Vec<&(String, i64)> = backups.iter().collect();
    newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    if keep.keeps_all() {
        return backups.iter().map(|(id, _)| id.clone()).collect();
    }
    let mut kept = BTreeSet::new();
    if let Some((id, _)) = newest_first.first() {
        kept.insert(id.clone());
    }
    for (id, _) in newest_first.iter().take(keep.last) {
        kept.insert(id.clone());
    }
    let buckets: [(usize, Bucket); 3] = [
        (keep.daily, day),
        (keep.weekly, week),
        (keep.monthly, month),
    ];
    for (n, bucket) in buckets {
        let mut last = None;
        let mut taken = 0;
        for (id, ms) in &newest_first {
            if taken == n {
                break;
            }
            let b = bucket(*ms);
            if last != Some(b) {
                kept.insert(id.clone());
                last = Some(b);
                taken += 1;
            }
        }
    }
    kept
}

/// The period a time falls in.
type Bucket = fn(i64) -> i64;

fn day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// Monday-based weeks (1970-01-01 was a Thursday).
fn week(ms: i64) -> i64 {
    (day(ms) + 3).div_euclid(7)
}

fn month(ms: i64) -> i64 {
    let date = jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    i64::from(date.year()) * 12 + i64::from(date.month())
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneSummary {
    /// Backups kept.
    pub kept: Vec<String>,
    /// Backups removed.
    pub removed: Vec<String>,
    /// Block files removed because no kept backup holds them.
    pub block_files_removed: usize,
    /// Their bytes.
    pub bytes_removed: u64,
}

/// Removes the backups `keep` does not keep, unfinished backups, and the block files no
/// remaining backup holds.
pub fn prune(dest: &Path, keep: &Keep) -> Result<PruneSummary, Error> {
    let _lock = fsutil::lock_destination(dest)?;
    let all = manifest::list(dest)?;
    let pairs: Vec<(String, i64)> = all.iter().map(|m| (m.id.clone(), m.created_ms)).collect();
    let kept = select(&pairs, keep);
    let mut summary = PruneSummary::default();
    let mut referenced = HashSet::new();
    for m in &all {
        if kept.contains(&m.id) {
            summary.kept.push(m.id.clone());
            referenced.extend(m.files.iter().map(|f| f.stored.clone()));
        } else {
            let dir = manifest::backup_dir(dest, &m.id);
            // The manifest goes first: a prune interrupted here leaves no half backup listed.
            let man = dir.join(manifest::MANIFEST);
            fs::remove_file(&man).map_err(Error::io("remove", &man))?;
            fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
            summary.removed.push(m.id.clone());
        }
    }
    // Unfinished backups (no other writer runs: the lock is held).
    let backups = dest.join(BACKUPS);
    if backups.exists() {
        for e in fs::read_dir(&backups).map_err(Error::io("list", &backups))? {
            let e = e.map_err(Error::io("list", &backups))?;
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let blocks = dest.join(BLOCKS);
    if blocks.exists() {
        for (rel, size) in fsutil::walk(&blocks)? {
            let stored = format!("{BLOCKS}/{rel}");
            if !referenced.contains(&stored) {
                let p = blocks.join(&rel);
                fs::remove_file(&p).map_err(Error::io("remove", &p))?;
                summary.block_files_removed += 1;
                summary.bytes_removed += size;
            }
        }
        for e in fs::read_dir(&blocks).map_err(Error::io("list", &blocks))? {
            let e = e.map_err(Error::io("list", &blocks))?;
            // Only empty directories go; remove_dir refuses the others.
            let _ = fs::remove_dir(e.path());
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ids(v: &BTreeSet<String>) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    /// Four backups a day for 100 days, from 2026-01-01 (a Thursday) 00:00 UTC.
    fn history() -> Vec<(String, i64)> {
        let start = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        (0..400)
            .map(|i| {
                let ms = start + i * DAY / 4;
                (crate::manifest::id_for(ms), ms)
            })
            .collect()
    }

    #[test]
    fn nothing_configured_keeps_everything() {
        let h = history();
        assert_eq!(select(&h, &Keep::default()).len(), 400);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let h = history();
        let kept = select(
            &h,
            &Keep {
                daily: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            ids(&kept),
            [
                "20260408T180000.000Z",
                "20260409T180000.000Z",
                "20260410T180000.000Z"
            ]
        );
    }

    #[test]
    fn weekly_and_monthly_take_the_newest_of_their_period() {
        let h = history();
        let kept = select(
            &h,
            &Keep {
                weekly: 2,
                monthly: 3,
                ..Default::default()
            },
        );
        // 2026-04-10 is a Friday: this week's newest is the newest backup; last week ended
        // on Sunday 2026-04-05. Months: April (newest), March 31st, February 28th.
        assert_eq!(
            ids(&kept),
            [
                "20260228T180000.000Z",
                "20260331T180000.000Z",
                "20260405T180000.000Z",
                "20260410T180000.000Z"
            ]
        );
    }

    #[test]
    fn last_and_the_newest_are_always_kept() {
        let h = history();
        let kept = select(
            &h,
            &Keep {
                last: 2,
                ..Default::default()
            },
        );
        assert_eq!(ids(&kept), ["20260410T120000.000Z", "20260410T180000.000Z"]);
        let kept = select(
            &h,
            &Keep {
                monthly: 1,
                ..Default::default()
            },
        );
        assert_eq!(ids(&kept), ["20260410T180000.000Z"]);
    }
}
