//! The `App`: builds every component from the configuration, serves the HTTP API, and shuts
//! down in order (stop scraping, stop serving, close the store).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use medic_tsdb::Db;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::Config;
use crate::http::AppState;
use crate::reload::{ReloadMetrics, Reloader};
use crate::scrape::{ScrapeManager, ScrapeMetrics};
use crate::selfmetrics::{HttpMetrics, SelfMetrics};
use crate::serve::{ConnMetrics, WebConfigWatch};
use crate::Error;

/// Command-line overrides of the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data`.
    pub data: Option<PathBuf>,
    /// The file the config came from: reloads re-read it, and relative `rule_files` are taken
    /// from its directory.
    pub config_file: Option<PathBuf>,
    /// Listen on a non-loopback address although no authentication exists yet.
    pub allow_remote_unauthenticated: bool,
    /// `--web.config.file`: TLS and basic auth in Prometheus's format.
    pub web_config_file: Option<PathBuf>,
    /// `--ha.advertise-url`, over `ha.advertise_url`.
    pub ha_advertise_url: Option<String>,
}

impl Overrides {
    /// The config file's directory (relative `rule_files` and the alerting config are taken
    /// from it); empty without a file.
    fn config_dir(&self) -> PathBuf {
        self.config_file
            .as_deref()
            .and_then(std::path::Path::parent)
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }

    /// `--listen` and `--data` over the file's values.
    fn apply(&self, config: &mut Config) {
        if let Some(l) = &self.listen {
            config.server.listen = l.clone();
        }
        if let Some(u) = &self.ha_advertise_url {
            config.ha.advertise_url = Some(u.clone());
        }
        if let Some(d) = &self.data {
            config.storage.path = d.clone();
        }
    }
}

/// Refuses a listen address other hosts can reach unless the operator said they accept that
/// no `auth:` section is configured.
fn check_exposure(listen: &str, allowed: bool) -> Result<(), Error> {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    let host = host.trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allowed {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "refusing to listen on {listen}: other hosts could post alerts that start repairs, approve them, silence and reload, and no `auth:` section is configured. Configure users or tokens under `auth:` (docs/security.md), listen on 127.0.0.1 (the default) behind a proxy that authenticates, or pass --allow-unauthenticated-remote-access if this network is trusted"
    )))
}

/// `--web.config.file`, loaded (an error stops the start) and its reload gauge registered.
fn open_web_config(
    path: Option<&std::path::Path>,
    self_metrics: &SelfMetrics,
) -> Result<Option<Arc<WebConfigWatch>>, Error> {
    let Some(p) = path else { return Ok(None) };
    let w = WebConfigWatch::open(p).map_err(|message| Error::Config {
        file: p.to_path_buf(),
        message,
    })?;
    self_metrics.with_registry(|r| {
        r.register(
            "medic_web_config_last_reload_successful",
            "Whether the web config file in force is the one on disk",
            w.reload_ok.clone(),
        )
    });
    Ok(Some(Arc::new(w)))
}

/// Remote write's in-flight memory budget, in KiB.
fn write_budget(config: &Config) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        (config.remote_write.max_inflight_bytes.0 >> 10).max(1) as usize,
    ))
}

/// The address medic reaches itself at (its own scrape target): loopback for a wildcard.
fn self_target(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Where this replica serves, for standbys to forward to: `ha.advertise_url`, else medic's
/// own URL, with the host name in place of a wildcard address.
fn advertise_url(config: &Config, self_url: &str, addr: SocketAddr) -> String {
    if let Some(u) = &config.ha.advertise_url {
        return u.clone();
    }
    if !addr.ip().is_unspecified() {
        return self_url.to_string();
    }
    let host = crate::config::host_name().unwrap_or_else(|| "localhost".into());
    let scheme = self_url.split("://").next().unwrap_or("http");
    format!("{scheme}://{host}:{}", addr.port())
}

/// The connection limits of `server:`.
fn limits(config: &Config) -> crate::serve::ServeLimits {
    crate::serve::ServeLimits {
        max_connections: config.server.max_connections.max(1),
        idle_timeout: config.server.idle_timeout.duration(),
        tls_handshake_timeout: config
            .server
            .idle_timeout
            .duration()
            .min(std::time::Duration::from_secs(10)),
        read_timeout: config.server.read_timeout.duration(),
    }
}

/// A running medic.
pub struct App {
    state: Arc<AppState>,
    listener: TcpListener,
    addr: SocketAddr,
    web: Option<Arc<WebConfigWatch>>,
    conn_metrics: ConnMetrics,
    /// The syslog listeners and the file tailer, aborted at shutdown.
    syslog_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Remote write out: the senders and the queues' fsync, aborted at shutdown.
    remote_out_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Opens the store, binds the listener and prepares the scrape manager.
    pub async fn build(mut config: Config, overrides: Overrides) -> Result<App, Error> {
        overrides.apply(&mut config);
        let http = HttpMetrics::default();
        let self_metrics = SelfMetrics::new(&http);
        let tsdb_metrics = medic_tsdb::Metrics::default();
        self_metrics.with_registry(|r| tsdb_metrics.register(r));
        let conn_metrics = ConnMetrics::default();
        self_metrics.with_registry(|r| conn_metrics.register(r));
        let web = open_web_config(overrides.web_config_file.as_deref(), &self_metrics)?;
        let authenticates =
            config.auth.enabled() || web.as_ref().is_some_and(|w| w.current().authenticates());
        check_exposure(
            &config.server.listen,
            overrides.allow_remote_unauthenticated || authenticates,
        )?;
        let server = |router| {
            crate::serve::Server::new(router, web.clone(), limits(&config), conn_metrics.clone())
        };
        let (listener, addr, starting) = listen(&config.server.listen, server).await?;
        let tls = web.as_ref().is_some_and(|w| w.current().tls.is_some());

        let (db, remote_out_tasks) = open_db(&config, tsdb_metrics, &self_metrics).await?;
        let (logs, syslog_tasks) = open_logs(&config, &self_metrics).await?;

        let self_target = self_target(addr);
        let scrape = build_scrape(&config, &db, &self_target, tls, &self_metrics)?;

        let engine = medic_promql::Engine::new(config.query.engine_options());
        let query_backend = crate::query_backend::open(&config, &self_metrics)?;
        let result_cache = build_result_cache(&config.query.result_cache, &db, &self_metrics);
        let (rule_metrics, reload_metrics) = rule_and_reload_metrics(&self_metrics);
        let base = overrides.config_dir();
        let self_url = format!("{}://{self_target}", if tls { "https" } else { "http" });
        let advertised = (
            advertise_url(&config, &self_url, addr),
            starting.standby.clone(),
        );
        let stores = crate::stores::StateStores::open_as_leader(&config, &base, advertised).await?;
        let alerts = build_alert_manager(&config, &base, &self_url, &self_metrics, stores.alerts)?;
        let audit = stores.audit;
        let incidents = build_incidents(
            &config,
            &alerts,
            &self_metrics,
            &overrides,
            stores.incidents,
        )?;
        let reports = build_reports(&config, &alerts, &self_metrics, &overrides, stores.reports)?;
        let parts = HealParts {
            incidents: &incidents,
            alerts: &alerts,
            engine: &engine,
            db: &db,
            audit: &audit,
            logs: &logs,
            backend: &query_backend,
        };
        crate::ha::fence_notifications(&alerts, &stores.leader);
        let heal_store = (stores.heal, stores.leader);
        let heal = build_heal(&config, &self_url, &self_metrics, parts, heal_store)?;
        let rule_parts = (&engine, &db, &query_backend);
        let rules = build_rules(&config, &self_metrics, &alerts, rule_parts, rule_metrics)?;
        rules_read_logs(&rules, &logs);
        // Detectors saved at the last stop go to their rules as the rules load.
        let anomaly_path = crate::bridge::anomaly::snapshot_path(&config.storage.path);
        rules.restore_anomalies(crate::bridge::anomaly::load_snapshot(&anomaly_path));
        let reloader = Reloader::new(
            overrides.config_file.clone(),
            self_url.clone(),
            rules.clone(),
            alerts.clone(),
            heal.clone(),
            reload_metrics,
        );
        // A broken rule file stops the start, as in Prometheus; at reload it only logs.
        reloader
            .apply(&config)
            .await
            .map_err(|message| Error::Config {
                file: overrides.config_file.clone().unwrap_or_default(),
                message,
            })?;
        reloader.started();
        // Executions in flight when medic stopped continue, now that playbooks are loaded.
        heal.resume().map_err(|e| Error::Internal(e.to_string()))?;

        let write_budget = write_budget(&config);
        let backups = build_backups(&config, &self_metrics)?;
        let auth = crate::auth::Authenticator::new(config.auth.clone(), web.clone())
            .with_tokens(runtime_tokens(stores.tokens)?);
        let state = Arc::new(AppState {
            auth,
            client_rates: Default::default(),
            audit,
            write_budget,
            config,
            db,
            scrape: Some(Arc::new(scrape)),
            self_metrics,
            http,
            engine,
            query_backend,
            result_cache,
            rules,
            reloader,
            alerts,
            heal,
            incidents,
            reports,
            logs,
            backups,
        });
        starting.stop().await;
        Ok(App {
            state,
            listener,
            addr,
            web,
            conn_metrics,
            syslog_tasks,
            remote_out_tasks,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or `https://` when the web config serves TLS.
    pub fn url(&self) -> String {
        let tls = self.web.as_ref().is_some_and(|w| w.current().tls.is_some());
        format!("{}://{}", if tls { "https" } else { "http" }, self.addr)
    }

    /// The store.
    pub fn db(&self) -> Arc<Db> {
        self.state.db.clone()
    }

    /// Shared state, to reload from outside (SIGHUP).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops scraping, finishes in-flight requests and
    /// closes the store (fsync, checkpoint).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        if let Some(s) = &self.state.scrape {
            s.start();
        }
        let st = &self.state;
        // Stopped in this order at shutdown: repairs, alerts, incidents, reports.
        let mut services = vec![
            Stoppable::spawn(|stop| st.heal.clone().run(stop)),
            Stoppable::spawn(|stop| st.alerts.clone().run(stop)),
            Stoppable::spawn(|stop| st.incidents.clone().run(stop)),
            Stoppable::spawn(|stop| crate::reports::Reports::run(st.clone(), stop)),
        ];
        if let Some(logs) = &st.logs {
            services.push(Stoppable::spawn(|stop| logs.clone().run(stop)));
        }
        services.push(Stoppable::spawn(|stop| {
            crate::backup::Backups::run(st.clone(), stop)
        }));
        let anomaly_path = crate::bridge::anomaly::snapshot_path(&self.state.config.storage.path);
        let save_task = {
            let rules = self.state.rules.clone();
            let path = anomaly_path.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::bridge::anomaly::SAVE_INTERVAL);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    save_detectors(&rules, &path).await;
                }
            })
        };
        let prune_task = spawn_audit_pruning(&self.state);
        info!(addr = %self.addr, "medic is listening");
        let router = crate::http::router(self.state.clone());
        let served = crate::serve::Server::new(
            router,
            self.web.clone(),
            limits(&self.state.config),
            self.conn_metrics.clone(),
        )
        .serve(self.listener, shutdown)
        .await;
        info!("shutting down");
        if let Some(s) = &self.state.scrape {
            s.stop().await;
        }
        self.state.rules.stop().await;
        save_task.abort();
        prune_task.abort();
        for t in self.syslog_tasks.iter().chain(&self.remote_out_tasks) {
            t.abort();
        }
        save_detectors(&self.state.rules, &anomaly_path).await;
        for s in &services {
            s.stop.notify_one();
        }
        for s in services {
            let _ = s.task.await;
        }
        let db = self.state.db.clone();
        tokio::task::spawn_blocking(move || db.close())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        served.map_err(|e| Error::Internal(format!("HTTP server: {e}")))
    }
}

/// Opens the TSDB (replaying its WAL) on the blocking pool, and starts remote write out
/// before anything ingests, so that every commit from then on is queued for it.
async fn open_db(
    config: &Config,
    metrics: medic_tsdb::Metrics,
    self_metrics: &SelfMetrics,
) -> Result<(Arc<Db>, Vec<tokio::task::JoinHandle<()>>), Error> {
    let path = config.storage.path.clone();
    let opts = config.storage.tsdb_options();
    info!(path = %path.display(), "opening storage");
    let db = tokio::task::spawn_blocking(move || Db::open(&path, opts, metrics))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    info!("storage open");
    let remote_out = crate::remote_out::start(config, &db, self_metrics)?;
    Ok((db, remote_out))
}

/// The scrape manager over the configured jobs (and medic's own `/metrics` by default).
fn build_scrape(
    config: &Config,
    db: &Arc<Db>,
    self_target: &str,
    tls: bool,
    self_metrics: &SelfMetrics,
) -> Result<ScrapeManager, Error> {
    let scrape_metrics = ScrapeMetrics::default();
    self_metrics.with_registry(|r| scrape_metrics.register(r));
    let store: Arc<dyn medic_model::Appendable> = db.clone();
    ScrapeManager::new(
        store,
        &config.global,
        config.effective_scrape_configs(self_target, tls),
        scrape_metrics,
    )
}

/// Opens the log store when `logs.enabled` (the default), adds its metrics and starts its
/// inputs (syslog listeners, the file tailer).
async fn open_logs(
    config: &Config,
    self_metrics: &SelfMetrics,
) -> Result<
    (
        Option<Arc<crate::logs::Logs>>,
        Vec<tokio::task::JoinHandle<()>>,
    ),
    Error,
> {
    if !config.logs.enabled {
        return Ok((None, Vec::new()));
    }
    let opts = config.logs.store_options(&config.storage.path);
    let logs = crate::logs::Logs::open(opts, config.logs.max_entries).await?;
    self_metrics.with_registry(|r| r.register_collector(Box::new(logs.collector())));
    let inputs = logs.start_inputs(&config.logs).await?;
    Ok((Some(logs), inputs))
}

/// LogQL rules read the log store.
fn rules_read_logs(rules: &medic_rules::Manager, logs: &Option<Arc<crate::logs::Logs>>) {
    if let Some(l) = logs {
        rules.set_log_source(medic_rules::rule::LogSource(Arc::new(l.store.clone())));
    }
}

/// A background service and the signal that stops it.
struct Stoppable {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Stoppable {
    /// Spawns the future `run` makes from a shutdown future.
    fn spawn<F, Fut>(run: F) -> Stoppable
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Arc::new(tokio::sync::Notify::new());
        let signal = stop.clone();
        let task = tokio::spawn(run(Box::pin(async move { signal.notified().await })));
        Stoppable { stop, task }
    }
}

/// Saves anomaly detectors (off the async threads: it writes and fsyncs a file).
async fn save_detectors(rules: &Arc<medic_rules::Manager>, path: &std::path::Path) {
    let snaps = rules.anomaly_snapshots();
    if snaps.is_empty() && !path.exists() {
        return;
    }
    let path = path.to_path_buf();
    let res =
        tokio::task::spawn_blocking(move || crate::bridge::anomaly::save_snapshot(&path, &snaps))
            .await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "could not save anomaly detectors"),
        Err(e) => warn!(error = %e, "saving anomaly detectors panicked"),
    }
}

/// The backup service; checks `backup.encrypt_to` now, so a bad recipient stops the start
/// rather than the first scheduled backup.
fn build_backups(
    config: &Config,
    self_metrics: &SelfMetrics,
) -> Result<Arc<crate::backup::Backups>, Error> {
    config.backup.recipients().map_err(Error::Internal)?;
    let metrics = crate::backup::BackupMetrics::default();
    self_metrics.with_registry(|r| metrics.register(r));
    Ok(Arc::new(crate::backup::Backups::new(
        &config.storage.path,
        metrics,
    )))
}

/// The tokens made at run time, loaded from their store.
fn runtime_tokens(
    store: Arc<dyn medic_state::TokenStore>,
) -> Result<crate::auth::RuntimeTokens, Error> {
    crate::auth::RuntimeTokens::load(
        store,
        Arc::new(|| medic_model::Clock::now_ms(&medic_model::SystemClock)),
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Prunes audit entries older than `audit.retention`, hourly.
fn spawn_audit_pruning(state: &Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let audit = state.audit.clone();
    let retention = state.config.audit.retention.as_millis();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let audit = audit.clone();
            let before = medic_model::Clock::now_ms(&medic_model::SystemClock) - retention;
            match tokio::task::spawn_blocking(move || audit.prune(before)).await {
                Ok(Ok(n)) if n > 0 => info!(entries = n, "pruned old audit entries"),
                Ok(Err(e)) => warn!(error = %e, "cannot prune the audit log"),
                _ => {}
            }
        }
    })
}

/// The range-query result cache, told of every change to the store; `None` when disabled.
fn build_result_cache(
    config: &crate::config::ResultCacheConfig,
    db: &Arc<Db>,
    self_metrics: &SelfMetrics,
) -> Option<Arc<medic_promql::ResultCache>> {
    if !config.enabled {
        return None;
    }
    let cache = Arc::new(medic_promql::ResultCache::new(
        config.max_bytes.0 as usize,
        config.hold_back.duration(),
    ));
    self_metrics.with_registry(|r| cache.metrics().register(r));
    db.observe_changes(cache.clone());
    Some(cache)
}

/// Loads the incidents from their store under the configured policy.
fn build_incidents(
    config: &Config,
    alerts: &Arc<medic_alert::AlertManager>,
    self_metrics: &SelfMetrics,
    overrides: &Overrides,
    store: Box<dyn medic_state::IncidentStore>,
) -> Result<Arc<crate::incidents::Incidents>, Error> {
    let metrics = crate::incidents::IncidentMetrics::default();
    self_metrics.with_registry(|r| metrics.register(r));
    crate::incidents::Incidents::open(
        &config.incidents,
        store,
        alerts.clone(),
        Arc::new(medic_model::SystemClock),
        metrics,
    )
    .map_err(|message| Error::Config {
        file: overrides.config_file.clone().unwrap_or_default(),
        message,
    })
}

/// Checks the report definitions against the alerting config's receivers.
fn build_reports(
    config: &Config,
    alerts: &Arc<medic_alert::AlertManager>,
    self_metrics: &SelfMetrics,
    overrides: &Overrides,
    store: Box<dyn medic_state::ReportStore>,
) -> Result<crate::reports::Reports, Error> {
    let metrics = crate::reports::ReportMetrics::default();
    self_metrics.with_registry(|r| metrics.register(r));
    crate::reports::Reports::new(
        &config.reports,
        store,
        &alerts.loaded().receivers(),
        metrics,
    )
    .map_err(|message| Error::Config {
        file: overrides.config_file.clone().unwrap_or_default(),
        message,
    })
}

/// What the heal engine is built on.
struct HealParts<'a> {
    incidents: &'a Arc<crate::incidents::Incidents>,
    alerts: &'a Arc<medic_alert::AlertManager>,
    engine: &'a medic_promql::Engine,
    db: &'a Arc<Db>,
    audit: &'a Arc<dyn medic_state::AuditStore>,
    logs: &'a Option<Arc<crate::logs::Logs>>,
    backend: &'a Option<Arc<crate::query_backend::QueryBackend>>,
}

/// Opens the heal journal and builds the engine (playbooks come with the first reload),
/// with the alert manager as its source of alerts and its way to people.
fn build_heal(
    config: &Config,
    self_url: &str,
    self_metrics: &SelfMetrics,
    parts: HealParts<'_>,
    (store, leader): (
        Arc<dyn medic_heal::journal::HealStore>,
        Option<Arc<crate::ha::Leader>>,
    ),
) -> Result<Arc<medic_heal::Engine>, Error> {
    let HealParts {
        incidents,
        alerts,
        engine,
        db,
        audit,
        logs,
        backend,
    } = parts;
    let metrics = Arc::new(medic_heal::metrics::HealMetrics::default());
    self_metrics.with_registry(|r| metrics.register(r));
    let url = config
        .server
        .external_url
        .clone()
        .unwrap_or_else(|| self_url.to_string());
    let opts = config.heal.options(&url).map_err(|message| Error::Config {
        file: Default::default(),
        message,
    })?;
    let query = Arc::new(crate::bridge::PromQuery {
        engine: engine.clone(),
        store: db.clone(),
        logs: logs.as_ref().map(|l| l.store.clone()),
        backend: backend
            .clone()
            .map(|b| b as Arc<dyn medic_model::InstantQuery>),
    });
    let heal = medic_heal::Engine::new(
        Vec::new(),
        opts,
        store,
        query,
        Arc::new(crate::bridge::AlertHooks(
            alerts.clone(),
            audit.clone(),
            incidents.clone(),
            leader,
        )),
        Arc::new(medic_model::SystemClock),
        metrics,
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    crate::bridge::observe(alerts, heal.clone());
    Ok(heal)
}

/// Opens the alert state and builds the alert manager from the config's alerting section.
fn build_alert_manager(
    config: &Config,
    base: &std::path::Path,
    self_url: &str,
    self_metrics: &SelfMetrics,
    state: Arc<dyn medic_alert::state::StateStore>,
) -> Result<Arc<medic_alert::AlertManager>, Error> {
    let config_err = |message: String| Error::Config {
        file: config
            .alerting
            .config_file
            .as_ref()
            .map(|f| base.join(f))
            .unwrap_or_default(),
        message,
    };
    let loaded = crate::reload::load_alerting(config, base).map_err(config_err)?;
    let metrics = Arc::new(medic_alert::metrics::AlertMetrics::default());
    self_metrics.with_registry(|r| metrics.register(r));
    let opts = medic_alert::Options {
        external_url: config
            .server
            .external_url
            .clone()
            .unwrap_or_else(|| self_url.to_string()),
        data_retention: config.alerting.data_retention.as_millis(),
        history_retention: config.alerting.history_retention.as_millis(),
        flap_hold: config.alerting.flap_hold.as_millis(),
        max_alerts: config.alerting.max_alerts,
        silence_limits: medic_alert::silence::SilenceLimits {
            max_silences: config.alerting.max_silences,
            max_silence_size_bytes: config.alerting.max_silence_size_bytes.0 as usize,
        },
        ..Default::default()
    };
    medic_alert::AlertManager::new(
        loaded,
        state,
        Arc::new(medic_model::SystemClock),
        metrics,
        opts,
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Listens before the WAL replays (minutes for a large head): meanwhile `/-/healthy` says the
/// process is up and `/-/ready` that it is not ready yet, as Prometheus does.
async fn listen(
    addr: &str,
    server: impl FnOnce(axum::Router) -> crate::serve::Server,
) -> Result<(TcpListener, SocketAddr, crate::starting::Starting), Error> {
    // Listen first: while the WAL replays (minutes for a large head), `/-/healthy` says the
    // process is up and `/-/ready` that it is not ready yet, as Prometheus does.
    let listener = bind(addr).await.map_err(|error| Error::Listen {
        addr: addr.to_string(),
        error,
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let (listener, starting) = crate::starting::serve_while_starting(listener, server)?;
    info!(addr = %local, "listening; ready once storage is open");
    Ok((listener, local, starting))
}

/// Binds `addr` with a listen backlog of 4,096 (the kernel caps it at `net.core.somaxconn`),
/// as Go servers do: with tokio's 1,024 a burst of connections waits out SYN retries.
async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(4096)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

/// The rule manager's and the reloader's metrics, registered.
fn rule_and_reload_metrics(
    self_metrics: &SelfMetrics,
) -> (medic_rules::RuleMetrics, ReloadMetrics) {
    let rule_metrics = medic_rules::RuleMetrics::default();
    let reload_metrics = ReloadMetrics::default();
    self_metrics.with_registry(|r| {
        rule_metrics.register(r);
        reload_metrics.register(r);
    });
    (rule_metrics, reload_metrics)
}

/// The rule manager over the store (or the query backend), its alerts to the alert manager
/// and to external Alertmanagers.
fn build_rules(
    config: &Config,
    self_metrics: &SelfMetrics,
    alerts: &Arc<medic_alert::AlertManager>,
    (engine, db, backend): (
        &medic_promql::Engine,
        &Arc<Db>,
        &Option<Arc<crate::query_backend::QueryBackend>>,
    ),
    rule_metrics: medic_rules::RuleMetrics,
) -> Result<Arc<medic_rules::Manager>, Error> {
    let forward_metrics = crate::forward::ForwardMetrics::default();
    self_metrics.with_registry(|r| forward_metrics.register(r));
    let forwarder = crate::forward::Forwarder::start(
        &config.alerting.prometheus(),
        medic_model::Labels::from_pairs(config.global.external_labels.clone()),
        forward_metrics,
    )?;
    let rule_store: Arc<dyn medic_rules::Storage> = db.clone();
    let rules = medic_rules::Manager::new(
        engine.clone(),
        rule_store,
        Arc::new(crate::bridge::RulesNotifier(alerts.clone(), forwarder)),
        Arc::new(medic_model::SystemClock),
        rule_metrics,
    );
    if let Some(b) = backend {
        rules.set_query_backend(medic_rules::QueryBackend(b.clone()));
    }
    Ok(rules)
}
