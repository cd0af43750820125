//! The leader lease in PostgreSQL: one row per lease name with its holder, fencing token and
//! expiry, timed by the database's clock (`now()`), so replicas' clocks need not agree. Taking
//! a lease that has expired, or that another replica held, increments the token; renewing
//! keeps it. An action fenced with [`PgLease::check`] runs only if the token is still the
//! current one.

use super::PgConn;

const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE medic_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
",
    "
ALTER TABLE medic_lease ADD COLUMN url TEXT NOT NULL DEFAULT '';
",
];

/// Who holds a lease, as [`PgLease::holder`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub replica: String,
    pub token: i64,
    /// Where the holder serves its API (`ha.advertise_url`), for standbys to forward to.
    pub url: String,
    /// Whether the lease is unexpired by the database's clock.
    pub live: bool,
}

/// Leases in PostgreSQL.
pub struct PgLease {
    conn: PgConn,
}

impl PgLease {
    pub fn open(url: &str) -> Result<PgLease, String> {
        Ok(PgLease {
            conn: PgConn::open(url, "lease", MIGRATIONS)?,
        })
    }

    /// Takes or renews lease `name` for `holder` (serving at `url`) for `ttl_ms`: its fencing
    /// token, or `None` when another holder's lease has not expired.
    pub fn acquire(
        &self,
        name: &str,
        holder: &str,
        url: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>, String> {
        let (name, holder, url) = (name.to_string(), holder.to_string(), url.to_string());
        self.conn.run(move |c| {
            Ok(c.query_opt(
                "INSERT INTO medic_lease AS l (name, holder, token, expires_at, url)
                 VALUES ($1, $2, 1, now() + $3::float8 * interval '1 millisecond', $4)
                 ON CONFLICT (name) DO UPDATE SET
                     token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                                  THEN l.token ELSE l.token + 1 END,
                     holder = EXCLUDED.holder,
                     expires_at = EXCLUDED.expires_at,
                     url = EXCLUDED.url
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
                 RETURNING token",
                &[&name, &holder, &(ttl_ms as f64), &url],
            )?
            .map(|r| r.get(0)))
        })
    }

    /// Whether `holder` still holds lease `name` with `token`, by the database's clock.
    pub fn check(&self, name: &str, holder: &str, token: i64) -> Result<bool, String> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.conn.run(move |c| {
            Ok(c.query_opt(
                "SELECT 1 FROM medic_lease
                 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()",
                &[&name, &holder, &token],
            )?
            .is_some())
        })
    }

    /// Gives the lease up (a clean shutdown), so another replica need not wait for it to
    /// expire.
    pub fn release(&self, name: &str, holder: &str, token: i64) -> Result<(), String> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.conn.run(move |c| {
            c.execute(
                "UPDATE medic_lease SET expires_at = now()
                 WHERE name = $1 AND holder = $2 AND token = $3",
                &[&name, &holder, &token],
            )
            .map(|_| ())
        })
    }

    /// The current holder of lease `name`, expired or not.
    pub fn holder(&self, name: &str) -> Result<Option<Holder>, String> {
        let name = name.to_string();
        self.conn.run(move |c| {
            Ok(c.query_opt(
                "SELECT holder, token, url, expires_at > now() FROM medic_lease WHERE name = $1",
                &[&name],
            )?
            .map(|r| Holder {
                replica: r.get(0),
                token: r.get(1),
                url: r.get(2),
                live: r.get(3),
            }))
        })
    }
}
