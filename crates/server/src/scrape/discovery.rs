//! Target discovery: static lists and `file_sd_configs` (JSON or YAML files of target groups,
//! re-read when their modification time changes). A file that fails to parse keeps its last
//! good targets, as in Prometheus.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::SystemTime;

use medic_model::Labels;
use serde::Deserialize;
use tracing::warn;

use crate::config::{FileSdConfig, StaticConfig};

/// One group of targets sharing labels, as in a file_sd file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl From<&StaticConfig> for TargetGroup {
    fn from(s: &StaticConfig) -> Self {
        TargetGroup {
            targets: s.targets.clone(),
            labels: s.labels.clone(),
        }
    }
}

/// Reads file_sd files and remembers what they held.
#[derive(Debug, Default)]
pub struct FileSd {
    files: HashMap<PathBuf, (SystemTime, Vec<TargetGroup>)>,
    /// Read or parse failures so far (for medic's own metrics).
    pub errors: u64,
}

impl FileSd {
    /// The target groups of every file matched by `cfg`, each labelled `__meta_filepath`.
    pub fn refresh(&mut self, cfg: &FileSdConfig) -> Vec<(Labels, Vec<String>)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for pattern in &cfg.files {
            let paths = match glob::glob(pattern) {
                Ok(p) => p.filter_map(Result::ok).collect::<Vec<_>>(),
                Err(e) => {
                    warn!(pattern, error = %e, "invalid file_sd glob");
                    self.errors += 1;
                    continue;
                }
            };
            for path in paths {
                seen.push(path.clone());
                let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                let cached = self.files.get(&path);
                let fresh = match (cached, mtime) {
                    (Some((t, _)), Some(m)) if *t == m => None,
                    _ => Some(read_groups(&path)),
                };
                match fresh {
                    Some(Ok(groups)) => {
                        self.files.insert(
                            path.clone(),
                            (mtime.unwrap_or(SystemTime::UNIX_EPOCH), groups),
                        );
                    }
                    Some(Err(e)) => {
                        warn!(file = %path.display(), error = %e, "cannot read file_sd file; keeping its previous targets");
                        self.errors += 1;
                    }
                    None => {}
                }
                if let Some((_, groups)) = self.files.get(&path) {
                    for g in groups {
                        let mut labels: Vec<(String, String)> =
                            g.labels.clone().into_iter().collect();
                        labels.push(("__meta_filepath".into(), path.display().to_string()));
                        out.push((Labels::from_pairs(labels), g.targets.clone()));
                    }
                }
            }
        }
        self.files.retain(|p, _| seen.contains(p));
        out
    }
}

fn read_groups(path: &PathBuf) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    if is_json {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        medic_model::yaml::check_depth(&text)
            .and_then(|()| serde_norway::from_str(&text).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_yaml_and_keeps_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("a.json");
        std::fs::write(
            &j,
            r#"[{"targets":["h1:9100","h2:9100"],"labels":{"env":"prod"}}]"#,
        )
        .unwrap();
        let y = dir.path().join("b.yml");
        std::fs::write(&y, "- targets: ['h3:9100']\n").unwrap();
        let cfg = FileSdConfig {
            files: vec![
                format!("{}/*.json", dir.path().display()),
                format!("{}/*.yml", dir.path().display()),
            ],
            refresh_interval: crate::config::Dur::from_secs(1),
        };
        let mut sd = FileSd::default();
        let groups = sd.refresh(&cfg);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0.get("env"), Some("prod"));
        assert!(groups[0]
            .0
            .get("__meta_filepath")
            .unwrap()
            .ends_with("a.json"));
        // Break the JSON file (and make sure its mtime changes): old targets stay.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&j, "[{oops").unwrap();
        let f = std::fs::File::options().write(true).open(&j).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let groups = sd.refresh(&cfg);
        assert_eq!(groups.len(), 2);
        assert_eq!(sd.errors, 1);
        // Remove it: its targets go.
        std::fs::remove_file(&j).unwrap();
        assert_eq!(sd.refresh(&cfg).len(), 1);
    }
}
