//! `state:` — where medic keeps its durable state: embedded SQLite files under
//! `storage.path` (the default, for one machine) or a PostgreSQL database that replicas share
//! (docs/ha.md).

use super::*;

/// `state:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `sqlite` (default) or `postgresql`.
    #[serde(default)]
    pub backend: StateBackend,
    /// The database, when `backend: postgresql`.
    #[serde(default)]
    pub postgresql: Option<PostgresConfig>,
}

/// Which engine holds the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    #[default]
    Sqlite,
    #[serde(alias = "postgres")]
    Postgresql,
}

/// `state.postgresql:` — the connection, as a URL given inline or, to keep the password out
/// of the config file, read from a file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:5432/database?sslmode=disable` (or the `key=value`
    /// form). Masked in `/api/v1/status/config`.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL (trailing whitespace ignored); relative to the config file.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

impl StateConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        match (self.backend, &self.postgresql) {
            (StateBackend::Sqlite, Some(_)) => Err(
                "state.postgresql is set but state.backend is sqlite; set state.backend: postgresql to use it".into(),
            ),
            (StateBackend::Postgresql, None) => Err(
                "state.backend is postgresql but state.postgresql is missing; give its url or url_file".into(),
            ),
            (StateBackend::Postgresql, Some(p)) => match (&p.url, &p.url_file) {
                (Some(_), Some(_)) => {
                    Err("state.postgresql: give url or url_file, not both".into())
                }
                (None, None) => Err("state.postgresql: url or url_file is required".into()),
                _ => Ok(()),
            },
            (StateBackend::Sqlite, None) => Ok(()),
        }
    }

    /// The PostgreSQL URL when the state lives there; `base` is the config file's directory.
    /// The error names the file, never its content.
    pub fn postgres_url(&self, base: &Path) -> Result<Option<String>, String> {
        let Some(p) = self
            .postgresql
            .as_ref()
            .filter(|_| self.backend == StateBackend::Postgresql)
        else {
            return Ok(None);
        };
        if let Some(u) = &p.url {
            return Ok(Some(u.clone()));
        }
        let file = base.join(p.url_file.as_deref().unwrap_or(Path::new("")));
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("state.postgresql.url_file {}: {e}", file.display()))?;
        Ok(Some(text.trim_end().to_string()))
    }
}
