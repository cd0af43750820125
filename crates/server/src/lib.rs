//! The medic server: the [`App`](app::App) that builds every component from the configuration
//! and wires them together, the scrape manager, the remote write receiver, and the HTTP APIs
//! (Prometheus-compatible where Prometheus has the endpoint, medic's own elsewhere).
//!
//! Layout: `config` (the YAML file, documented field by field), `scrape` (discovery, relabelling,
//! exposition parsers, scrape loops), `remote_write`, `api` (routes), `selfmetrics` (`/metrics`),
//! `app` (wiring and shutdown). Depends on every library crate; nothing depends on it but the CLI.

pub mod alert_api;
pub mod anomaly_api;
pub mod api;
pub mod app;
pub mod config;
mod error;
pub mod forward;
pub mod heal_api;
mod http_auth;
pub mod query_api;
pub mod reload;
pub mod remote_write;
pub mod rules_api;
pub mod scrape;
pub mod selfmetrics;
mod starting;
pub mod status_api;

pub use app::{App, Overrides};
pub use config::Config;
pub use error::Error;
