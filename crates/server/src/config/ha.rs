//! `ha:` — replicas on one PostgreSQL with one leader (docs/ha.md).

use super::*;

/// `ha:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// Wait for the leader lease before starting anything that acts (default false). Needs
    /// `state.backend: postgresql`.
    #[serde(default)]
    pub enabled: bool,
    /// How long the lease lasts unrenewed (default 10s): a dead leader is replaced within
    /// about this, plus the standby's start.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: Dur,
    /// The lease's name: replicas with the same name share one leader (default `medic`).
    #[serde(default = "default_lease_name")]
    pub lease_name: String,
    /// This replica's name (default: host name and process id).
    #[serde(default)]
    pub replica: Option<String>,
    /// Where the other replicas reach this one's API, written into the lease while it leads:
    /// standbys forward their requests there (default: medic's own URL, the host name in
    /// place of a wildcard listen address; `--ha.advertise-url` overrides).
    #[serde(default)]
    pub advertise_url: Option<String>,
}

fn default_lease_ttl() -> Dur {
    Dur::from_secs(10)
}

fn default_lease_name() -> String {
    "medic".into()
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_ttl: default_lease_ttl(),
            lease_name: default_lease_name(),
            replica: None,
            advertise_url: None,
        }
    }
}

/// This machine's host name, if the kernel says.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

impl HaConfig {
    pub fn replica_name(&self) -> String {
        self.replica.clone().unwrap_or_else(|| {
            let host = host_name().unwrap_or_else(|| "medic".into());
            format!("{host}-{}", std::process::id())
        })
    }

    pub(super) fn validate(&self, state: &StateConfig) -> Result<(), String> {
        if self.enabled && state.backend != StateBackend::Postgresql {
            return Err(
                "ha.enabled needs the state on PostgreSQL (state.backend: postgresql)".into(),
            );
        }
        if let Some(u) = &self.advertise_url {
            let p = reqwest::Url::parse(u).map_err(|e| format!("ha.advertise_url: {e}"))?;
            if !matches!(p.scheme(), "http" | "https") || p.host_str().is_none() {
                return Err(format!(
                    "ha.advertise_url: {u:?} is not an http(s) URL with a host"
                ));
            }
        }
        if self.lease_ttl.as_millis() < 1_000 {
            return Err("ha.lease_ttl: at least 1s".into());
        }
        Ok(())
    }
}
