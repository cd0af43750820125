//! SQLite: an online, consistent copy of a live database, and the integrity check.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Error;

fn sqlite_err(path: &Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::Sqlite {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Copies the live database `src` to `dst` with SQLite's online backup API, in one step (so
/// the copy is one consistent state even while medic writes), as a self-contained file
/// (rollback journal, no `-wal`).
pub fn online_copy(src: &Path, dst: &Path) -> Result<(), Error> {
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err(src))?;
    from.busy_timeout(Duration::from_secs(30))
        .map_err(sqlite_err(src))?;
    let mut to = Connection::open(dst).map_err(sqlite_err(dst))?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let backup = Backup::new(&from, &mut to).map_err(sqlite_err(dst))?;
        // -1: every page in one step, under one read transaction.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match backup.step(-1).map_err(sqlite_err(src))? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => {
                    return Err(Error::Sqlite {
                        path: src.to_path_buf(),
                        message: format!("online backup did not finish in 60s: {other:?}"),
                    })
                }
            }
        }
    }
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite_err(dst))?;
    Ok(())
}

/// SQLite's `PRAGMA integrity_check` on a file opened read-only and immutable (no journal,
/// no lock, nothing written beside it). `Ok(None)` when it is sound, else what SQLite found.
pub fn integrity_check(path: &Path) -> Result<Option<String>, Error> {
    let uri = format!(
        "file:{}?immutable=1",
        path.to_string_lossy()
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23")
    );
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err(path))?;
    let mut stmt = match conn.prepare("PRAGMA integrity_check") {
        Ok(s) => s,
        Err(e) => return Ok(Some(e.to_string())),
    };
    let rows: Result<Vec<String>, _> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect());
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(None),
        Ok(rows) => Ok(Some(rows.join("; "))),
        Err(e) => Ok(Some(e.to_string())),
    }
}
