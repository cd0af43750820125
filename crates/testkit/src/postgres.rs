//! A throwaway PostgreSQL cluster (Debian package `postgresql`) in a directory of the test's,
//! trust authentication on loopback only, stopped (`-m immediate`) when dropped. As root the
//! server runs as the `postgres` user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{free_port, require_binary};

/// A running cluster; `port` on 127.0.0.1, superuser `postgres`, no password.
pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `args[0]` with the rest, as the `postgres` user when running as root.
fn as_postgres(args: &[&str]) -> Command {
    if root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    }
}

impl Postgres {
    /// Initialises and starts a cluster under `dir` with `max_connections` (3 of them
    /// reserved for superusers), `fsync` off: fast, for tests that do not measure.
    pub fn start(dir: &Path, max_connections: u32) -> Postgres {
        Postgres::start_with(dir, max_connections, false)
    }

    /// As [`Postgres::start`], with `fsync` as given: on for benchmarks, so that a commit
    /// costs what it costs in production.
    pub fn start_with(dir: &Path, max_connections: u32, fsync: bool) -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .unwrap_or_default();
        require_binary(
            bin.join("postgres")
                .to_str()
                .unwrap_or("/usr/lib/postgresql/*/bin/postgres"),
            "postgresql",
        );
        require_binary("/usr/bin/psql", "postgresql-client");
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        if root() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .unwrap();
            assert!(st.success(), "chown {} to postgres", dir.display());
            let st = Command::new("chmod").arg("755").arg(dir).status().unwrap();
            assert!(st.success(), "chmod {}", dir.display());
        }
        let port = free_port();
        let initdb = bin.join("initdb");
        let st = as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(st.success(), "initdb failed");
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections={max_connections} -c superuser_reserved_connections=3 -c fsync={}",
            data.display(),
            if fsync { "on" } else { "off" }
        );
        let log = data.join("log");
        let pg_ctl = bin.join("pg_ctl");
        let st = as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "start",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(
            st.success(),
            "postgres did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Postgres {
            dir: data,
            port,
            bin,
        }
    }

    /// Runs `sql` with psql as `user` on database `postgres`; stdout, or stderr as the error.
    pub fn psql(&self, user: &str, sql: &str) -> Result<String, String> {
        self.psql_on("postgres", user, sql)
    }

    /// Runs `sql` with psql as `user` on database `db`.
    pub fn psql_on(&self, db: &str, user: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-Atc", sql])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Creates database `name` and returns a connection URL for it.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        self.url(name)
    }

    /// Turns TLS on with `cert` and `key` (PEM files) and accepts TCP connections only over
    /// it (`hostssl` in pg_hba.conf), so a client that does not encrypt is refused.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            let dest = self.dir.join(to);
            std::fs::copy(from, &dest).unwrap();
            if root() {
                let st = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&dest)
                    .status()
                    .unwrap();
                assert!(st.success(), "chown {}", dest.display());
            }
            let st = Command::new("chmod")
                .arg("600")
                .arg(&dest)
                .status()
                .unwrap();
            assert!(st.success(), "chmod {}", dest.display());
        }
        let hba = self.dir.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        let ssl_only: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("host"))
            .chain([
                "hostssl all all 127.0.0.1/32 trust",
                "hostssl all all ::1/128 trust",
            ])
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&hba, ssl_only).unwrap();
        for sql in [
            "ALTER SYSTEM SET ssl = on",
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "SELECT pg_reload_conf()",
        ] {
            self.psql("postgres", sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        // The reload is asynchronous: wait until a TLS session is what the server sees.
        for _ in 0..50 {
            if self
                .psql(
                    "postgres",
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                )
                .is_ok_and(|v| v == "t")
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("postgres did not turn TLS on");
    }

    /// A connection URL for database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            self.dir.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ])
        .stdout(Stdio::null())
        .status();
    }
}
