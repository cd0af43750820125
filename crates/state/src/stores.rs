//! The stores besides the alert state and the heal journal (whose traits live with their
//! engines), each implemented on SQLite and on PostgreSQL ([`crate::pg`]).

use medic_alert::incident::Incident;
use medic_model::{AuditEntry, AuditSink};

use crate::{
    AuditError, AuditQuery, AuditRow, IncidentStoreError, Report, ReportStoreError, StoredReport,
    StoredToken, TokenError, Verdict,
};

/// API tokens made at run time (`medic token create`), stored by the SHA-256 of their secret.
pub trait TokenStore: Send + Sync {
    /// Adds a token; a live token of the same name is refused.
    fn insert(&self, t: &StoredToken) -> Result<(), TokenError>;
    /// Every token, revoked ones included, oldest first.
    fn list(&self) -> Result<Vec<StoredToken>, TokenError>;
    /// Revokes the live token with this id or name; returns it as it now is.
    fn revoke(&self, id_or_name: &str, by: &str, now: i64) -> Result<StoredToken, TokenError>;
}

/// Generated reports and, per scheduled report, the time last handled.
pub trait ReportStore: Send + Sync {
    /// Stores a report; returns its id (increasing).
    fn save(&self, r: &Report) -> Result<i64, ReportStoreError>;
    /// The newest `limit` reports, without their bodies.
    fn list(&self, limit: usize) -> Result<Vec<Report>, ReportStoreError>;
    /// One report with its bodies.
    fn get(&self, id: i64) -> Result<Option<Report>, ReportStoreError>;
    /// The scheduled time last handled for report `name`.
    fn last_run(&self, name: &str) -> Result<Option<i64>, ReportStoreError>;
    fn set_last_run(&self, name: &str, at: i64) -> Result<(), ReportStoreError>;
}

/// Incidents, each stored whole, and their post-incident reports.
pub trait IncidentStore: Send + Sync {
    /// Inserts or replaces incidents, all or none.
    fn save(&self, incidents: &[&Incident]) -> Result<(), IncidentStoreError>;
    /// Deletes incidents and their reports.
    fn delete(&self, ids: &[u64]) -> Result<(), IncidentStoreError>;
    fn save_report(&self, r: &StoredReport) -> Result<(), IncidentStoreError>;
    fn report(&self, id: u64) -> Result<Option<StoredReport>, IncidentStoreError>;
    /// Every incident, by id; a row that cannot be read is an error naming it.
    fn load_all(&self) -> Result<Vec<Incident>, IncidentStoreError>;
}

/// The hash-chained audit log.
pub trait AuditStore: AuditSink + Send + Sync {
    /// Appends an entry, chained to the newest row; returns its sequence number.
    fn append(&self, e: &AuditEntry) -> Result<i64, AuditError>;
    /// Rows matching `q`, newest first.
    fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, AuditError>;
    /// Walks the whole chain: every row's hash recomputed from its fields and the row before,
    /// no sequence number missing, the newest row the one remembered as written last.
    fn verify(&self) -> Result<Verdict, AuditError>;
    /// Deletes rows older than `before` (ms), keeping the chain verifiable; returns how many.
    fn prune(&self, before: i64) -> Result<usize, AuditError>;
    /// Entries that could not be written (as [`AuditSink::record`] never fails its caller).
    fn failures(&self) -> u64;
}
