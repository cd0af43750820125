//! `medic`: the command-line entry point. Each subcommand lives in its own module; this file
//! only parses arguments, sets up logging and maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alerts_cmd;
mod anomaly_cmd;
mod audit_cmd;
mod backup_cmd;
mod client;
mod demo;
mod heal_cmd;
mod incident_cmd;
mod logs_cmd;
mod promql_cmd;
mod query;
mod replay_cmd;
mod report_cmd;
mod rules_cmd;
mod run;
mod slo_cmd;
mod token_cmd;

/// medic — a self-healing operations engine: it stores metrics, evaluates Prometheus-style rules
/// and anomaly detectors, manages alerts, and repairs what breaks under guards.
#[derive(Debug, Parser)]
#[command(
    name = "medic",
    version,
    about = "medic — a self-healing operations engine: stores metrics, evaluates rules and anomaly detectors, manages alerts, and repairs what breaks",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Logging options of the commands that run medic (`run`, `demo`); client commands do not log.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log level filter (error, warn, info, debug, trace, or a tracing filter like
    /// `info,medic_tsdb=debug`). Overrides MEDIC_LOG.
    #[arg(long, env = "MEDIC_LOG", default_value = "info")]
    log_level: String,

    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

impl Default for LogArgs {
    fn default() -> Self {
        LogArgs {
            log_level: "warn".into(),
            log_format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: store metrics from scrapes and remote write, serve the APIs.
    ///
    /// Without --config, medic runs on embedded defaults: it listens on 127.0.0.1:9099, keeps
    /// data in ./data and scrapes its own /metrics every 15s.
    Run(run::RunArgs),
    /// Evaluate a PromQL expression against a running medic.
    Query(query::QueryArgs),
    /// PromQL tools.
    Promql {
        #[command(subcommand)]
        what: PromqlCommand,
    },
    /// Rule files: check them, run their unit tests (promtool-compatible).
    Rules {
        #[command(subcommand)]
        what: RulesCommand,
    },
    /// SLOs in Sloth's `prometheus/v1` format: generate the rules Sloth generates (medic also
    /// loads such files directly from `rule_files`); list and show those of a running medic.
    Slo {
        #[command(subcommand)]
        what: SloCommand,
    },
    /// Incidents in a running medic: list, show, open, ack, assign, comment, mitigate,
    /// resolve, close, and the post-incident report.
    Incident(incident_cmd::IncidentArgs),
    /// Logs in a running medic (or Loki), with LogQL: query, follow, labels.
    Logs(logs_cmd::LogsArgs),
    /// Backups: create (online, from a running medic), list, verify, restore, prune, keygen.
    Backup(backup_cmd::BackupArgs),
    /// Replays rules and playbooks over stored history: what would have fired, been notified,
    /// and which repairs would have run or been vetoed (dry run), and when.
    Replay(replay_cmd::ReplayArgs),
    /// Reports of a running medic: generate one for a period (`--period 2026-11 --format
    /// html`), list the configured and stored ones, show one.
    Report(report_cmd::ReportArgs),
    /// Alerts in a running medic: list them, their groups, their history.
    Alerts(alerts_cmd::AlertsArgs),
    /// Silences in a running medic: add, list, expire (amtool's `silence`).
    Silence(alerts_cmd::SilenceArgs),
    /// Acknowledge an alert group: it is not notified again until it changes or the
    /// acknowledgement expires, and it does not escalate.
    Ack(alerts_cmd::AckArgs),
    /// The heal engine: executions, manual trigger, approvals, pauses, trust, dry runs.
    Heal(heal_cmd::HealArgs),
    /// Anomalies in a running medic: recent ones with scores, baselines, the per-rule report.
    Anomalies(anomaly_cmd::AnomaliesArgs),
    /// Anomaly detection offline: run and score the Numenta Anomaly Benchmark.
    Anomaly(anomaly_cmd::AnomalyArgs),
    /// The audit log of a running medic: who did what, from where, with what result; and
    /// `verify`, which checks its hash chain (exit 1 when broken).
    Audit(audit_cmd::AuditArgs),
    /// Bearer tokens of a running medic: create (printed once), list, revoke (admin only).
    Token(token_cmd::TokenArgs),
    /// The whole loop in one command: a small web service breaks in five ways, medic notices,
    /// repairs and verifies each, and stays still in the quiet periods between them.
    ///
    /// Starts the demo service's instances and medic itself as child processes, on the
    /// configuration in examples/demo/; prints a timeline and a table per fault, then keeps
    /// running (until Ctrl-C) so the APIs can be explored. `--once` exits after the schedule.
    Demo(demo::DemoArgs),
    /// Check configuration files without starting anything.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PromqlCommand {
    /// Run PromQL test scripts in Prometheus's `.test` format; exit 1 if any eval fails.
    Test(promql_cmd::TestArgs),
}

#[derive(Debug, Subcommand)]
enum SloCommand {
    /// Print the recording and alerting rules for an SLO spec, as `sloth generate` does.
    Generate(slo_cmd::GenerateArgs),
    /// Every SLO of a running medic: objective, errors now, burn rates, budget left.
    List(slo_cmd::ListArgs),
    /// One SLO: its budget and the error ratio and burn rate over every window.
    Show(slo_cmd::ShowArgs),
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate rule files like `promtool check rules`: every error with file, line, group and
    /// rule. Exit 1 if any file is invalid.
    Check(rules_cmd::CheckArgs),
    /// Run rule unit tests in promtool's format (`promtool test rules`). Exit 1 on failure.
    Test(rules_cmd::TestArgs),
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Validate a medic.yml, the Alertmanager configuration and the rule files it names; prints
    /// the first config error with file, line and field, and every rule-file error. Exit 1 if
    /// anything is invalid.
    Config {
        /// The file to check.
        file: PathBuf,
    },
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Caps glibc's malloc arenas at one per core (at least 2) unless `MALLOC_ARENA_MAX` says
/// otherwise. glibc gives each new thread up to 8 arenas per core, each keeping what was freed
/// in it; the threads a large query spreads over made a 100k-series query run peak at 2 GiB,
/// 0.9 GiB with two arenas and no slower (BENCHMARKS.md).
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a tunable; called before any other thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.max(2) as libc::c_int);
        }
    }
}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    let log = match &cli.command {
        Command::Run(a) => a.log.clone(),
        Command::Demo(a) => a.log.clone(),
        _ => LogArgs::default(),
    };
    init_logging(&log.log_level, log.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Query(args) => query::run(args),
        Command::Alerts(args) => alerts_cmd::alerts(args),
        Command::Silence(args) => alerts_cmd::silence(args),
        Command::Ack(args) => alerts_cmd::ack(args),
        Command::Anomalies(args) => anomaly_cmd::anomalies(args),
        Command::Anomaly(args) => anomaly_cmd::anomaly(args),
        Command::Audit(args) => match audit_cmd::audit(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Token(args) => token_cmd::token(args),
        Command::Demo(args) => demo::run(args),
        Command::Heal(args) => match heal_cmd::heal(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(2),
            Err(e) => Err(e),
        },
        Command::Promql {
            what: PromqlCommand::Test(args),
        } => match promql_cmd::test(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Incident(args) => incident_cmd::incident(args),
        Command::Logs(args) => logs_cmd::logs(args),
        Command::Replay(args) => replay_cmd::replay(args),
        Command::Backup(args) => match backup_cmd::backup(args) {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code.clamp(1, 255) as u8),
            Err(e) => Err(e),
        },
        Command::Report(args) => report_cmd::report(args),
        Command::Slo { what } => match what {
            SloCommand::Generate(args) => slo_cmd::generate(args),
            SloCommand::List(args) => slo_cmd::list(args),
            SloCommand::Show(args) => slo_cmd::show(args),
        },
        Command::Rules { what } => {
            let ok = match what {
                RulesCommand::Check(a) => rules_cmd::check(a),
                RulesCommand::Test(a) => rules_cmd::test(a),
            };
            return if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Command::Check {
            what: CheckCommand::Config { file },
        } => match medic_server::Config::load(&file) {
            Ok(cfg) => {
                println!("{}: OK", file.display());
                let base = file.parent().unwrap_or(std::path::Path::new(""));
                // The Alertmanager configuration it names, as `amtool check-config` would.
                if let Some(am) = &cfg.alerting.config_file {
                    match medic_server::reload::load_alerting(&cfg, base) {
                        Ok(l) => println!(
                            "{}: OK ({} receivers)",
                            base.join(am).display(),
                            l.receivers().len()
                        ),
                        Err(e) => {
                            eprintln!("medic: error: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                // The playbooks it names, each checked whole, and the receivers they notify.
                let pbs = medic_heal::playbook::load_all(&cfg.heal.playbooks, base)
                    .map_err(|e| e.to_string())
                    .and_then(|pbs| {
                        let alerting = medic_server::reload::load_alerting(&cfg, base)?;
                        medic_server::reload::check_playbooks(&pbs, &alerting)?;
                        Ok(pbs)
                    });
                match pbs {
                    Ok(pbs) if pbs.is_empty() => {}
                    Ok(pbs) => println!("{} playbooks: OK", pbs.len()),
                    Err(e) => {
                        eprintln!("medic: error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                // As `promtool check config`: the rule files it names are checked too.
                match medic_rules::manager::expand_globs(&cfg.rule_files, base) {
                    Ok(files) if files.is_empty() => Ok(()),
                    Ok(files) => {
                        println!("{} rule files found\n", files.len());
                        if rules_cmd::check(rules_cmd::CheckArgs::files(files)) {
                            Ok(())
                        } else {
                            return ExitCode::FAILURE;
                        }
                    }
                    Err(e) => Err(anyhow::anyhow!(e)),
                }
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medic: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
