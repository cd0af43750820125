//! `backup:` — scheduled backups (docs/backup.md), and where medic's files are, for the
//! backups to find them.

use std::path::{Path, PathBuf};

use medic_backup::Keep;

use super::*;

/// `backup:` — scheduled online backups. Without `destination` nothing is scheduled;
/// `medic backup create` works either way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// A directory on this machine that scheduled backups go to.
    #[serde(default)]
    pub destination: Option<PathBuf>,
    /// How often (default 24h).
    #[serde(default = "default_backup_interval")]
    pub interval: Dur,
    /// Which backups to keep after each scheduled one (default: 7 daily, 4 weekly, 12 monthly).
    #[serde(default = "default_keep")]
    pub keep: Keep,
    /// Encrypt every file to these age recipients (`age1…`); the identity that decrypts is
    /// needed to verify contents and to restore.
    #[serde(default)]
    pub encrypt_to: Vec<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            destination: None,
            interval: default_backup_interval(),
            keep: default_keep(),
            encrypt_to: Vec::new(),
        }
    }
}

fn default_backup_interval() -> Dur {
    Dur::from_secs(24 * 3600)
}

fn default_keep() -> Keep {
    Keep {
        last: 0,
        daily: 7,
        weekly: 4,
        monthly: 12,
    }
}

impl BackupConfig {
    /// The recipients, parsed; the error names the bad one.
    pub fn recipients(&self) -> Result<Vec<age::x25519::Recipient>, String> {
        self.encrypt_to
            .iter()
            .map(|r| {
                medic_backup::parse_recipient(r).map_err(|e| format!("backup.encrypt_to: {e}"))
            })
            .collect()
    }
}

impl Config {
    /// The SQLite databases medic keeps, by their name in a backup, and where each is (those
    /// on PostgreSQL excluded).
    pub fn state_databases(&self) -> Vec<(&'static str, PathBuf)> {
        let dir = &self.storage.path;
        let or = |p: &Option<PathBuf>, name: &str| p.clone().unwrap_or_else(|| dir.join(name));
        let mut dbs = vec![
            ("alerts.db", or(&self.alerting.state_file, "alerts.db")),
            ("heal.db", or(&self.heal.state_file, "heal.db")),
            ("audit.db", or(&self.audit.file, "audit.db")),
            (
                "incidents.db",
                or(&self.incidents.state_file, "incidents.db"),
            ),
            ("reports.db", dir.join("reports.db")),
            ("auth.db", dir.join("auth.db")),
        ];
        // On PostgreSQL every store is the database's to back up (pg_dump), not medic's files.
        if self.state.backend == super::StateBackend::Postgresql {
            dbs.clear();
        }
        dbs
    }

    /// The database backed up as `name` (one of [`Config::state_databases`]).
    pub fn state_database(&self, name: &str) -> PathBuf {
        self.state_databases()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
            .unwrap_or_else(|| self.storage.path.join(name))
    }

    /// Every file this config references, resolved against `base` (the config file's
    /// directory) and with globs expanded: rule files (PromQL, LogQL, SLO specs), playbooks,
    /// the Alertmanager config and its templates, file_sd target files, and the credential
    /// and TLS files of scrape jobs. The config file itself is not included.
    pub fn referenced_files(&self, base: &Path) -> Result<Vec<PathBuf>, String> {
        let expand = |patterns: &[String]| medic_rules::manager::expand_globs(patterns, base);
        let mut out = expand(&self.rule_files)?;
        out.extend(expand(&self.logs.rule_files)?);
        out.extend(expand(&self.heal.playbooks)?);
        if let Some(f) = &self.alerting.config_file {
            let path = base.join(f);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let am: medic_alert::config::Config =
                serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let am_base = path.parent().unwrap_or(base);
            out.extend(am.template_files(am_base)?);
            out.push(path);
        }
        for sc in self.scrape_configs.iter().flatten() {
            for fsd in &sc.file_sd_configs {
                out.extend(expand(&fsd.files)?);
            }
            out.extend(sc.credential_files().into_iter().map(|p| base.join(p)));
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| seen.insert(p.clone()));
        Ok(out)
    }
}
