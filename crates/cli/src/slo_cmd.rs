//! `medic slo generate`: the rule file Sloth generates from a `prometheus/v1` SLO spec
//! (`sloth generate -i FILE`), with Sloth's group, rule, series and label names.

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `medic slo generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// A Sloth SLO spec (`version: "prometheus/v1"`).
    #[arg(short = 'i', long = "input")]
    input: PathBuf,

    /// Write the rules here instead of standard output.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,

    /// The SLO period (Sloth's `--default-slo-period`), in whole days: `30d`, `28d`, `4w`.
    #[arg(long = "default-slo-period", default_value = "30d")]
    period: String,
}

/// Generates the rules; errors name the file, line, SLO and field.
pub fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    let period = medic_model::parse_duration(&a.period)
        .map_err(|e| anyhow::anyhow!("--default-slo-period: {e}"))?;
    let days = period.as_secs() / 86_400;
    if days == 0 || period.as_secs() % 86_400 != 0 || days > 3650 {
        anyhow::bail!(
            "--default-slo-period: {:?} must be a whole number of days between 1d and 3650d",
            a.period
        );
    }
    let opts = medic_rules::slo::Options {
        period_days: days as u32,
        ..Default::default()
    };
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("cannot read {}", a.input.display()))?;
    let spec = medic_rules::slo::spec::parse(&text, &a.input).map_err(|errs| {
        anyhow::anyhow!(errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    })?;
    let rules = medic_rules::slo::generate(&spec, &opts);
    // What was generated must load as a rule file, or it is medic's bug, not the user's.
    medic_rules::file::parse(&rules, &a.input, false).map_err(|errs| {
        anyhow::anyhow!(
            "the generated rules do not load (a bug in medic): {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    match a.out {
        Some(path) => std::fs::write(&path, rules)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rules}"),
    }
    Ok(())
}
