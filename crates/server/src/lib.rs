//! The medic server: the [`App`](app::App) that builds every component from the configuration
//! and wires them together, the scrape manager, the remote write receiver, and the HTTP APIs
//! (Prometheus-compatible where Prometheus has the endpoint, medic's own elsewhere).
//!
//! Layout: `config` (the YAML file, documented field by field), `scrape` (discovery, relabelling,
//! exposition parsers, scrape loops), `remote_write` (the protocol and the sample path),
//! `forward` (alerts to external Alertmanagers), `backup` (snapshots and scheduled backups), `client_auth` (credentials and TLS of outgoing
//! requests), `http` (the router, the shared state, one error type, one file per API), `bridge`
//! (the adapters between crates), `reload`, `selfmetrics` (`/metrics`), `app` (wiring and
//! shutdown). Imports go one way: `app` → `http`, `bridge` → the library crates. Depends on
//! every library crate; nothing depends on it but the CLI.

pub mod app;
pub mod auth;
pub mod backup;
pub mod bridge;
mod client_auth;
pub mod config;
pub mod console;
mod error;
pub mod forward;
pub mod ha;
pub mod http;
pub mod incidents;
pub mod logs;
pub mod query_backend;
pub mod reload;
mod remote_histogram;
pub mod remote_out;
pub mod remote_write;
pub mod remote_write_v2;
pub mod replay;
pub mod reports;
pub mod scrape;
pub mod selfmetrics;
pub mod serve;
mod starting;
mod stores;

pub use app::{App, Overrides};
pub use config::Config;
pub use error::Error;
