//! medic's alert manager: Alertmanager's configuration format, routing tree, grouping,
//! inhibition, time intervals, silences and notification log, the notification pipeline with
//! webhook, Slack, PagerDuty and e-mail receivers, and medic's additions — acknowledgements,
//! escalation policies and alert history.
//!
//! The decisions are deterministic cores with time passed in ([`dispatch::Dispatcher`],
//! [`pipeline::prepare`], [`silence::Silences`], [`inhibit::Inhibitor`], [`nflog`]), so they
//! can be tested to the millisecond; [`manager::AlertManager`] runs them on tokio and keeps
//! their state in a [`state::StateStore`].

pub mod ack;
pub mod config;
pub mod dispatch;
pub mod incident;
pub mod inhibit;
pub mod manager;
pub mod matchers;
pub mod metrics;
pub mod nflog;
pub mod notify;
pub mod pipeline;
pub mod receivers;
pub mod route;
pub mod silence;
pub mod sim;
pub mod state;
pub mod template;
pub mod timeinterval;
pub mod types;

use std::path::PathBuf;

pub use manager::{
    AlertFilter, AlertManager, AlertView, EscalationPolicy, GroupView, Loaded, Options,
};
pub use types::{Alert, AlertSource, Annotations, Fingerprint, Status};

/// The alert manager's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is invalid; the message names the field.
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    /// Received data is invalid; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Durable state could not be read or written.
    #[error("{0}")]
    State(String),
    /// A limit would be passed; nothing was stored.
    #[error("{0}")]
    Limit(String),
}
