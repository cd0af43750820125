//! What every handler shares.

use std::sync::Arc;

use medic_tsdb::Db;

use crate::config::Config;
use crate::reload::Reloader;
use crate::scrape::ScrapeManager;
use crate::selfmetrics::{HttpMetrics, SelfMetrics};

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// Who may call what.
    pub auth: crate::auth::Authenticator,
    /// The audit log.
    pub audit: Arc<dyn medic_state::AuditStore>,
    /// The configuration in force.
    pub config: Config,
    /// The store.
    pub db: Arc<Db>,
    /// The scrape manager (absent until started).
    pub scrape: Option<Arc<ScrapeManager>>,
    /// `/metrics`.
    pub self_metrics: SelfMetrics,
    /// HTTP request metrics.
    pub http: HttpMetrics,
    /// The PromQL engine.
    pub engine: medic_promql::Engine,
    /// The store that answers PromQL instead of the embedded TSDB (`query.backend`).
    pub query_backend: Option<Arc<crate::query_backend::QueryBackend>>,
    /// Range-query results kept for dashboards (`query.result_cache`; absent when disabled).
    pub result_cache: Option<Arc<medic_promql::ResultCache>>,
    /// The rule manager.
    pub rules: Arc<medic_rules::Manager>,
    /// Applies SIGHUP and `/-/reload`.
    pub reloader: Reloader,
    /// The alert manager.
    pub alerts: Arc<medic_alert::AlertManager>,
    /// The heal engine.
    pub heal: Arc<medic_heal::Engine>,
    /// Incidents.
    pub incidents: Arc<crate::incidents::Incidents>,
    /// Scheduled and on-demand reports.
    pub reports: crate::reports::Reports,
    /// Request rate per client (`server.client_rate_limit`).
    pub client_rates: crate::serve::client_rate::ClientRates,
    /// The log store (absent when `logs.enabled: false`).
    pub logs: Option<Arc<crate::logs::Logs>>,
    /// Snapshots for backups, and scheduled backups.
    pub backups: Arc<crate::backup::Backups>,
    /// Remote write's in-flight memory budget, in KiB.
    pub write_budget: Arc<tokio::sync::Semaphore>,
}
