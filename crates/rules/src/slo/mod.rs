//! SLOs in Sloth's `prometheus/v1` format: read unmodified, turned into the recording and
//! alerting rules Sloth generates (same group, rule, series and label names, so Sloth's
//! Grafana dashboards and existing queries work), and loaded like any rule file.

mod generate;
pub mod spec;

use std::path::Path;

pub use generate::{generate, Options};
pub use spec::Spec;

use crate::file::FileError;

/// Whether `query` uses Sloth's `{{.window}}` template variable (spaces allowed inside).
pub(crate) fn has_window(query: &str) -> bool {
    window_re().is_match(query)
}

/// `query` with every `{{.window}}` replaced by `window`.
pub(crate) fn with_window(query: &str, window: &str) -> String {
    window_re().replace_all(query, window).into_owned()
}

fn window_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\{\{\s*\.window\s*\}\}").expect("valid regex"))
}

/// Whether `text` is a Sloth spec rather than a Prometheus rule file: it has a top-level
/// `version:` key (rule files have only `groups:`).
pub fn is_slo_spec(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("version:"))
}

/// Reads a Sloth spec and generates its rule file text.
pub fn load(path: &Path, opts: &Options) -> Result<String, Vec<FileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![FileError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    let spec = spec::parse(&text, path)?;
    Ok(generate(&spec, opts))
}
