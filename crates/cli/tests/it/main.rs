//! End-to-end tests: the real `medic` binary, started, fed, killed and restarted.

mod access;
mod alerting;
mod alerting_vs_alertmanager;
mod anomaly;
mod audit;
mod bad_input;
mod crash;
mod demo;
mod heal;
mod hostile;
mod identities;
mod incidents;
mod layout;
mod limits;
mod prometheus;
mod prometheus_config;
mod promql;
mod queries;
mod receivers;
mod rules;
mod rules_server;
mod rules_vs_prometheus;
mod secrets;
mod slo;
mod support;
mod tls;
