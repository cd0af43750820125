//! Versioned schema migrations. Each component (alerts, heal, …) has a list of steps; the
//! version applied is kept in `medic_schema`. Replicas starting together take an advisory
//! lock, so each step runs once. A database whose schema is newer than this binary knows is
//! refused, with the versions.

use postgres::Client;

use super::describe;

/// The advisory lock key all medic migrations take ("medic" in ASCII).
const LOCK_KEY: i64 = 0x006d_6564_6963;

pub(super) fn apply(c: &mut Client, component: &str, steps: &[String]) -> Result<(), String> {
    let known = steps.len() as i64;
    let mut tx = c.transaction().map_err(|e| describe(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(|e| describe(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS medic_schema (
             component TEXT PRIMARY KEY,
             version BIGINT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| describe(&e))?;
    let at: i64 = tx
        .query_opt(
            "SELECT version FROM medic_schema WHERE component = $1",
            &[&component],
        )
        .map_err(|e| describe(&e))?
        .map_or(0, |r| r.get(0));
    if at > known {
        return Err(format!(
            "the {component} schema is at version {at}, newer than this medic understands ({known}); upgrade medic"
        ));
    }
    for (i, step) in steps.iter().enumerate().skip(at as usize) {
        tx.batch_execute(step).map_err(|e| {
            format!(
                "migrating {component} to version {}: {}",
                i + 1,
                describe(&e)
            )
        })?;
    }
    if at < known {
        tx.execute(
            "INSERT INTO medic_schema (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, applied_at = now()",
            &[&component, &known],
        )
        .map_err(|e| describe(&e))?;
    }
    tx.commit().map_err(|e| describe(&e))
}
