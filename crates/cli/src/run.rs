//! `medic run`.

use std::path::PathBuf;

use anyhow::Context;
use medic_server::{App, Config, Overrides};
use tracing::info;

/// Arguments of `medic run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub log: crate::LogArgs,

    /// Configuration file (YAML). Without it, embedded defaults apply (see `examples/medic.yml`).
    #[arg(long, short = 'c', env = "MEDIC_CONFIG")]
    config: Option<PathBuf>,

    /// Address to listen on, overriding `server.listen` (e.g. 0.0.0.0:9099, 127.0.0.1:0).
    #[arg(long)]
    listen: Option<String>,

    /// Data directory, overriding `storage.path`.
    #[arg(long)]
    data: Option<PathBuf>,

    /// Serve other hosts without an `auth:` section: anyone who reaches the port can post alerts
    /// that start repairs, approve them, silence and reload. Without this flag (or `auth:`)
    /// medic refuses to listen on anything but a loopback address.
    #[arg(long)]
    allow_unauthenticated_remote_access: bool,

    /// TLS and basic auth in the web configuration format of Prometheus and Alertmanager
    /// (`tls_server_config`, `http_server_config`, `basic_auth_users`, `rate_limit`); re-read
    /// when it or a certificate it names changes. See docs/security.md.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,

    /// With `ha.enabled`: where the other replicas reach this one, overriding
    /// `ha.advertise_url` (e.g. http://medic-0.medic:9099). Standbys forward requests there.
    #[arg(long = "ha.advertise-url", env = "MEDIC_HA_ADVERTISE_URL", value_name = "URL", value_parser = http_url)]
    ha_advertise_url: Option<String>,
}

/// An http(s) URL with a host.
fn http_url(s: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(s).map_err(|e| e.to_string())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("want an http(s) URL with a host, such as http://medic-0.medic:9099".into());
    }
    Ok(s.to_string())
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("medic")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = App::build(
            config,
            Overrides {
                listen: args.listen,
                data: args.data,
                config_file: args.config.clone(),
                allow_remote_unauthenticated: args.allow_unauthenticated_remote_access,
                web_config_file: args.web_config_file,
                ha_advertise_url: args.ha_advertise_url,
            },
        )
        .await?;
        // Taken over before anyone is told medic is up: a SIGTERM sent as soon as the line below
        // appears (systemd, a test) must stop medic cleanly, not kill it.
        let shutdown = shutdown_signal()?;
        // A line tests and scripts can wait for, with the real port when --listen ends in :0.
        println!("medic listening on {}", app.url());
        let state = app.state();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                info!("received SIGHUP");
                // The reloader logs the outcome and sets the reload metrics.
                let _ = state.reloader.reload().await;
            }
        });
        app.run(shutdown).await?;
        info!("medic stopped");
        Ok(())
    })
}

/// Installs the SIGTERM and SIGINT handlers now; the future completes when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => info!("received SIGINT"),
            _ = term.recv() => info!("received SIGTERM"),
        }
    })
}

/// Raises the soft limit on open files to the hard limit, as Go programs (Prometheus,
/// Alertmanager) do at start: the common soft limit of 1,024 is reached by a few hundred scrape
/// targets and clients, after which even `/-/ready` cannot be answered.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit on our own process with a struct we own.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
            return;
        }
        let before = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
            info!(
                from = before,
                to = lim.rlim_max,
                "raised the open files limit"
            );
        }
    }
}
