//! `medic-bench`: measures medic side by side with the real peers on this machine.
//!
//! - `ingest`: the same pre-encoded remote-write workload into medic, Prometheus and
//!   VictoriaMetrics, one server at a time, rounds interleaved (A B C C B A …): ingest rate,
//!   samples per server CPU-second, peak RSS, bytes per sample once compacted.
//! - `query`: query latency of golden-signal queries, instant and range.
//! - `dashboard`: a dashboard refreshing every 15 s under live ingest, with and without the
//!   targets' result caches.
//! - `rules`: rule evaluation time per interval of a mixin-style rule set under live ingest.
//! - `codecs`: bytes per sample and decode speed of medic's block codecs on the same workload.
//! - `alerts`: the alert manager against Alertmanager 0.25: alerts accepted per second through
//!   API v2, memory holding them, notification latency.
//!
//! - `heal`: the heal engine's reaction time, storm behaviour under guards, recovery time.
//! - `anomaly`: the anomaly detector's cost per update and state per series.
//! - `logs`: log ingest and queries against ClickHouse, zstd -19 and grep.
//!
//! Loopback only; every load is bounded by the pre-built requests.

mod alertbench;
mod anomalybench;
mod codecs;
mod dashbench;
mod healbench;
mod ingest;
mod logbench;
mod proc;
mod querybench;
mod reportbench;
mod rulebench;
mod ruleset;
mod tierbench;
mod workload;

use clap::{Parser, Subcommand};

/// Side-by-side benchmarks of medic against Prometheus and VictoriaMetrics.
#[derive(Debug, Parser)]
#[command(name = "medic-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Remote-write ingest into each target; prints a Markdown table of medians and ratios.
    Ingest(ingest::Args),
    /// Block codec comparison (XOR vs pco) at several chunk sizes.
    Codecs(codecs::Args),
    /// Query latency of a golden-signal query set, instant and range, on each target.
    Query(querybench::Args),
    /// A dashboard of range queries refreshing every 15 s under live ingest, timed with the
    /// targets' result caches and without (`nocache=1`).
    Dashboard(dashbench::Args),
    /// Rule evaluation time per interval of a node/service mixin-style rule set, from each
    /// target's own rule-group metrics.
    Rules(rulebench::Args),
    /// Alerts per second through API v2, memory with N active alerts and alert-to-webhook
    /// latency, medic against Alertmanager on the same configuration and stream.
    Alerts(alertbench::Args),
    /// The heal engine: alert-to-action reaction time, a storm of alerts under guards, and a
    /// crashed service's time to verified recovery.
    Heal(healbench::Args),
    /// Report generation over a month of `up` for N series: median time and peak memory.
    Report(reportbench::Args),
    /// Logs: ingest rate, lines per CPU-second, bytes per line, needle search and count
    /// latency, medic against Debian's clickhouse-server, with zstd -19 and grep as limits.
    Logs(logbench::Args),
    /// Downsampled tiers: disk use and 30-day query latency with and without them.
    Tiers(tierbench::Args),
    /// The anomaly detector's cost: nanoseconds per update and bytes of state per series, over
    /// the NAB corpus.
    Anomaly(anomalybench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Ingest(a) => ingest::run(a),
        Cmd::Codecs(a) => codecs::run(a),
        Cmd::Query(a) => querybench::run(a),
        Cmd::Dashboard(a) => dashbench::run(a),
        Cmd::Rules(a) => rulebench::run(a),
        Cmd::Alerts(a) => alertbench::run(a),
        Cmd::Heal(a) => healbench::run(a),
        Cmd::Anomaly(a) => anomalybench::run(a),
        Cmd::Tiers(a) => tierbench::run(a),
        Cmd::Report(a) => reportbench::run(a),
        Cmd::Logs(a) => logbench::run(a),
    }
}
