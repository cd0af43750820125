//! Replicas in standby behind one leader (`ha.enabled`, docs/ha.md). A replica waits for the
//! leader lease in PostgreSQL before it opens its state and starts anything that acts; the
//! leader renews the lease from a thread of its own and, the moment it can no longer be sure
//! the lease is its own ([`medic_state::lease::Leadership`]), exits — a fenced process does
//! nothing more. A watchdog thread that does no I/O enforces that even while a renewal hangs.
//! Every repair action, verification and notification also checks the fence first: the local
//! clock, then the token in the database (on a connection of its own, so that checks never
//! delay renewals; a confirmation is reused for 250 ms). The supervisor (systemd, Kubernetes)
//! starts the exited replica again, as a standby.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medic_state::lease::{Answer, Change, Leadership, LeaseTiming};
use medic_state::pg::PgLease;
use tracing::{error, info, warn};

use crate::config::HaConfig;
use crate::Error;

pub mod standby;
pub use standby::{LeaderSeen, StandbyView};

/// The exit code of a replica that lost the lease.
pub const FENCED_EXIT: i32 = 3;

/// This replica's leadership.
pub struct Leader {
    lease: PgLease,
    /// The fence's own connection.
    checks: PgLease,
    /// The last token the database confirmed, and when (ms since `epoch`).
    confirmed: Mutex<Option<(i64, i64)>>,
    name: String,
    replica: String,
    /// Where this replica serves its API, written into the lease for standbys.
    url: String,
    leadership: Mutex<Leadership>,
    epoch: Instant,
    ttl_ms: i64,
}

impl Leader {
    fn now(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    /// One attempt, if one is due; steps down (exits) when the lease is no longer surely held.
    fn tick(&self) -> Option<Change> {
        let now = self.now();
        let (attempt, change) = self
            .leadership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .poll(now);
        if let Some(c) = change {
            return Some(c);
        }
        let attempt = attempt?;
        let answer = match self
            .lease
            .acquire(&self.name, &self.replica, &self.url, self.ttl_ms)
        {
            Ok(Some(token)) => Answer::Held(token),
            Ok(None) => Answer::Taken,
            Err(e) => Answer::Failed(e),
        };
        if let Answer::Failed(e) = &answer {
            warn!(error = %e, "cannot renew the leader lease");
        }
        let now = self.now();
        self.leadership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answered(attempt.sent_at, now, answer)
    }

    /// The fencing token while this replica may act.
    pub fn token(&self) -> Option<i64> {
        self.leadership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .token(self.now())
    }

    /// Exits the process unless it still holds the lease, by its own clock and then by the
    /// database's (the token current and unexpired).
    pub fn fence_or_exit(&self) {
        let Some(token) = self.token() else {
            fenced("the leader lease ran out by this replica's clock");
        };
        let now = self.now();
        let mut confirmed = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
        if confirmed.is_some_and(|(t, at)| t == token && now - at < 250) {
            return;
        }
        match self.checks.check(&self.name, &self.replica, token) {
            Ok(true) => *confirmed = Some((token, now)),
            Ok(false) => fenced("the database says another replica holds the leader lease"),
            Err(e) => fenced(&format!("cannot confirm the leader lease: {e}")),
        }
    }
}

fn fenced(why: &str) -> ! {
    error!(
        why,
        "this replica is no longer the leader; exiting so that it does nothing more"
    );
    std::process::exit(FENCED_EXIT);
}

/// Waits (blocking) until this replica holds the leader lease, then keeps it from a thread of
/// its own; `None` when `ha` is off. While it waits, `standby` learns who leads, so that the
/// requests this replica receives are forwarded there; `url` is where this replica serves,
/// for the others once it leads.
pub fn lead(
    config: &crate::config::Config,
    base: &std::path::Path,
    url: &str,
    standby: &StandbyView,
) -> Result<Option<Arc<Leader>>, Error> {
    let ha: &HaConfig = &config.ha;
    if !ha.enabled {
        return Ok(None);
    }
    let pg = config
        .state
        .postgres_url(base)
        .map_err(Error::Internal)?
        .ok_or_else(|| Error::Internal("ha.enabled needs state.backend: postgresql".into()))?;
    // A frozen old leader's transactions end before its lease would: its row locks never
    // hold up the new leader beyond the lease.
    let ttl_ms = ha.lease_ttl.as_millis();
    medic_state::pg::set_idle_transaction_timeout((ttl_ms as u64 / 2).min(5000));
    let open = || PgLease::open(&pg).map_err(|e| Error::Internal(format!("leader lease: {e}")));
    let (lease, checks) = (open()?, open()?);
    let leader = Arc::new(Leader {
        lease,
        checks,
        confirmed: Mutex::new(None),
        name: ha.lease_name.clone(),
        replica: ha.replica_name(),
        url: url.to_string(),
        leadership: Mutex::new(Leadership::new(LeaseTiming::from_ttl(ttl_ms))),
        epoch: Instant::now(),
        ttl_ms,
    });
    standby.set_me(&leader.replica);
    info!(replica = %leader.replica, lease = %leader.name, url, "standby: waiting for the leader lease");
    for round in 0u64.. {
        match leader.tick() {
            Some(Change::BecameLeader { token }) => {
                info!(replica = %leader.replica, token, "this replica is the leader");
                standby.set(None);
                break;
            }
            Some(Change::SteppedDown { .. }) | None => {}
        }
        // Who leads, asked every second: requests are forwarded there.
        if round % 10 == 0 && leader.token().is_none() {
            watch_leader(&leader, standby);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let keeper = leader.clone();
    std::thread::Builder::new()
        .name("leader-lease".into())
        .spawn(move || loop {
            if let Some(Change::SteppedDown { why, .. }) = keeper.tick() {
                fenced(&why);
            }
            std::thread::sleep(Duration::from_millis(50));
        })
        .map_err(|e| Error::Internal(format!("starting the lease keeper: {e}")))?;
    // The keeper may hang in a renewal (a partition can hold a query for minutes): a second
    // thread, which does no I/O, exits the moment the lease is no longer surely held.
    let watchdog = leader.clone();
    std::thread::Builder::new()
        .name("leader-watchdog".into())
        .spawn(move || loop {
            if watchdog.token().is_none() {
                fenced("the leader lease was not renewed in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        })
        .map_err(|e| Error::Internal(format!("starting the lease watchdog: {e}")))?;
    Ok(Some(leader))
}

/// Reads the lease's holder into `standby` (a live one other than this replica, with a URL),
/// and says so when it changes.
fn watch_leader(leader: &Leader, standby: &StandbyView) {
    let seen = match leader.lease.holder(&leader.name) {
        Ok(Some(h)) if h.live && h.replica != leader.replica && !h.url.is_empty() => {
            Some(LeaderSeen {
                replica: h.replica,
                url: h.url,
            })
        }
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "standby: cannot read the leader lease");
            None
        }
    };
    if seen != standby.leader() {
        match &seen {
            Some(l) => {
                info!(leader = %l.replica, url = %l.url, "standby: another replica leads; forwarding requests to it")
            }
            None => info!("standby: no live leader; answering 503 until one leads"),
        }
        standby.set(seen);
    }
}

/// Fences every notification of `alerts` by the lease, when there is one: a replica that lost
/// it exits before sending.
pub fn fence_notifications(alerts: &medic_alert::AlertManager, leader: &Option<Arc<Leader>>) {
    let Some(leader) = leader.clone() else {
        return;
    };
    alerts.set_send_fence(Arc::new(move || {
        let l = leader.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || l.fence_or_exit())
                .await
                .is_ok()
        })
    }));
}
