//! medic's state in PostgreSQL, for replicas that share it (docs/ha.md). Each store owns one
//! connection, driven by a thread of its own: the `postgres` client blocks, and blocking
//! calls cannot run on the async runtime's threads, so callers hand the thread a job and wait
//! for its answer — the same blocking contract as the SQLite stores. Every value is a bound
//! parameter; no SQL text is built from input.

mod alerts;
mod audit;
mod heal;
mod lease;
mod migrate;
mod records;
pub mod tls;

pub use alerts::PgState;
pub use audit::PgAudit;
pub use heal::PgHealStore;
pub use lease::{Holder, PgLease};
pub use records::{PgIncidents, PgReports, PgTokens};

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls};

/// A job for the connection's thread: gets the connected client, or why there is none.
type Job = Box<dyn FnOnce(Result<&mut Client, String>) + Send>;

/// One connection to PostgreSQL on a thread of its own; reconnects when the connection drops.
pub struct PgConn {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// host:port/database as user, for messages (never the password).
    target: String,
}

/// The server's message with its detail and hint, or the client's error.
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            // The cause chain: "error performing TLS handshake" alone does not say why.
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(c) = source {
                let text = c.to_string();
                if !s.contains(&text) {
                    s.push_str(&format!(": {text}"));
                }
                source = c.source();
            }
            s
        }
    }
}

/// Where a connection goes, without the password.
fn target_of(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgresql://{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("")
    )
}

/// How long the server lets a session sit idle inside a transaction (ms).
static IDLE_TRANSACTION_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(5000);

/// Sets how long connections opened from now on may sit idle inside a transaction before the
/// server ends them (default 5 s). A replica sets it under its lease's time to live, so that a
/// frozen old leader's row locks never outlast the lease they block the new leader for.
pub fn set_idle_transaction_timeout(ms: u64) {
    IDLE_TRANSACTION_MS.store(ms.max(100), std::sync::atomic::Ordering::Relaxed);
}

impl PgConn {
    /// Connects to `url` (`postgres://user:password@host:port/database?options`, or the
    /// `key=value` form) and runs `component`'s migrations. The password never appears in an
    /// error.
    pub fn open(url: &str, component: &str, migrations: &[&str]) -> Result<PgConn, String> {
        let (url, tls) = tls::split(url).map_err(|e| format!("postgresql connection URL: {e}"))?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| format!("postgresql connection URL: {e}"))?;
        config.ssl_mode(tls.ssl_mode());
        let connector = tls.connector()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A database host that vanished is noticed in about a minute, not two hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("medic");
        }
        // A transaction left open by a process that stopped between its statements (SIGSTOP,
        // a frozen VM: an old leader) would hold its row locks, and block the new leader,
        // for as long as the process lives; the server ends such a session after 5 s, or
        // sooner when the leader lease is shorter (`set_idle_transaction_timeout`).
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or(""),
            IDLE_TRANSACTION_MS.load(std::sync::atomic::Ordering::Relaxed)
        );
        config.options(options.trim());
        let target = target_of(&config);
        let (tx, rx) = mpsc::channel::<Job>();
        let t = target.clone();
        std::thread::Builder::new()
            .name(format!("pg-{component}"))
            .spawn(move || serve(config, connector, rx, &t))
            .map_err(|e| format!("starting the connection thread: {e}"))?;
        let conn = PgConn {
            jobs: Mutex::new(tx),
            target,
        };
        let (component, steps) = (component.to_string(), migrations.to_vec());
        let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        conn.run_raw(move |c| migrate::apply(c, &component, &steps))?;
        Ok(conn)
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, String> {
        self.run_raw(move |c| f(c).map_err(|e| describe(&e)))
    }

    /// Like `run`, with the error already a message.
    pub fn run_raw<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        self.submit(f)
            .recv()
            .map_err(|_| format!("{}: the connection thread is gone", self.target))?
    }

    /// Hands `f` to the connection's thread; the answer arrives on the returned channel.
    /// Jobs run in the order submitted.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, String> + Send + 'static,
    ) -> mpsc::Receiver<Result<T, String>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let target = self.target.clone();
        let job: Job = Box::new(move |c| {
            let r = c.and_then(f).map_err(|e| format!("{target}: {e}"));
            let _ = reply.send(r);
        });
        // A send error drops the job and its reply sender: the receiver then reports it.
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job);
        answer
    }
}

/// The connection thread: runs jobs in order, connecting first when there is no live
/// connection. Ends when the last sender goes.
fn serve(
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    jobs: mpsc::Receiver<Job>,
    target: &str,
) {
    let mut client: Option<Client> = None;
    for job in jobs {
        if client.as_ref().is_none_or(Client::is_closed) {
            let connected = match &tls {
                Some(tls) => config.connect(tls.clone()),
                None => config.connect(NoTls),
            };
            client = match connected {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(%target, error = %describe(&e), "cannot connect to postgresql");
                    job(Err(format!("cannot connect: {}", describe(&e))));
                    continue;
                }
            };
        }
        job(Ok(client.as_mut().expect("connected above")));
    }
}
