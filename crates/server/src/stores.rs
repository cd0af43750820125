//! medic's durable state, opened at start: SQLite files under `storage.path` (the default),
//! or one PostgreSQL database that replicas share (`state.backend: postgresql`, docs/ha.md).
//! The engines see only the store traits.

use std::path::Path;
use std::sync::Arc;

use medic_alert::state::StateStore;
use medic_heal::journal::HealStore;
use medic_state::pg::{PgAudit, PgHealStore, PgIncidents, PgReports, PgState, PgTokens};
use medic_state::{AuditStore, IncidentStore, ReportStore, TokenStore};
use tracing::info;

use crate::config::Config;
use crate::Error;

/// Every store medic keeps.
pub(crate) struct StateStores {
    /// This replica's leadership, when `ha.enabled`: the stores were opened once it led.
    pub leader: Option<Arc<crate::ha::Leader>>,
    pub alerts: Arc<dyn StateStore>,
    pub heal: Arc<dyn HealStore>,
    pub audit: Arc<dyn AuditStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub incidents: Box<dyn IncidentStore>,
    pub reports: Box<dyn ReportStore>,
}

/// A store that would not open: which one, and why (never the connection's password).
fn failed(what: &str) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl StateStores {
    /// With `ha.enabled`, waits (as a standby, forwarding requests to the leader through
    /// `standby`) for the leader lease first; then opens every store. `url` is where this
    /// replica serves, advertised in the lease.
    pub async fn open_as_leader(
        config: &Config,
        base: &Path,
        (url, standby): (String, Arc<crate::ha::StandbyView>),
    ) -> Result<StateStores, Error> {
        let (c, b) = (config.clone(), base.to_path_buf());
        let leader = tokio::task::spawn_blocking(move || crate::ha::lead(&c, &b, &url, &standby))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let mut stores = StateStores::open(config, base)?;
        stores.leader = leader;
        Ok(stores)
    }

    /// Opens every store on the configured backend; `base` is the config file's directory.
    pub fn open(config: &Config, base: &Path) -> Result<StateStores, Error> {
        let url = config
            .state
            .postgres_url(base)
            .map_err(|message| Error::Config {
                file: Default::default(),
                message,
            })?;
        match url {
            Some(url) => Self::on_postgres(&url),
            None => Self::on_sqlite(config),
        }
    }

    fn on_postgres(url: &str) -> Result<StateStores, Error> {
        info!("opening medic's state on postgresql");
        Ok(StateStores {
            leader: None,
            alerts: PgState::open(url).map_err(|e| failed("alert state")(e.to_string()))?,
            heal: PgHealStore::open(url).map_err(|e| failed("heal journal")(e.to_string()))?,
            audit: Arc::new(PgAudit::open(url).map_err(|e| failed("audit log")(e.to_string()))?),
            tokens: Arc::new(PgTokens::open(url).map_err(|e| failed("tokens")(e.to_string()))?),
            incidents: Box::new(
                PgIncidents::open(url).map_err(|e| failed("incidents")(e.to_string()))?,
            ),
            reports: Box::new(PgReports::open(url).map_err(|e| failed("reports")(e.to_string()))?),
        })
    }

    fn on_sqlite(config: &Config) -> Result<StateStores, Error> {
        let path = |name: &str| {
            let p = config.state_database(name);
            info!(path = %p.display(), "opening {name}");
            p
        };
        let p = path("alerts.db");
        let alerts =
            medic_state::SqliteState::open(&p).map_err(|e| failed("alert state")(e.to_string()))?;
        let p = path("heal.db");
        let heal = medic_state::SqliteHealStore::open(&p)
            .map_err(|e| failed("heal journal")(e.to_string()))?;
        let p = path("audit.db");
        let audit =
            medic_state::SqliteAudit::open(&p).map_err(|e| failed("audit log")(e.to_string()))?;
        let p = path("auth.db");
        let tokens = medic_state::SqliteTokens::open(&p)
            .map_err(|e| failed("tokens")(format!("{}: {e}", p.display())))?;
        let p = path("incidents.db");
        let incidents = medic_state::SqliteIncidents::open(&p)
            .map_err(|e| failed("incidents")(e.to_string()))?;
        let p = path("reports.db");
        let reports =
            medic_state::SqliteReports::open(&p).map_err(|e| failed("reports")(e.to_string()))?;
        Ok(StateStores {
            leader: None,
            alerts,
            heal,
            audit: Arc::new(audit),
            tokens: Arc::new(tokens),
            incidents: Box::new(incidents),
            reports: Box::new(reports),
        })
    }
}
