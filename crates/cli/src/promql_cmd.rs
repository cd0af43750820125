//! `medic promql test`: runs Prometheus-format PromQL test scripts.

use std::path::PathBuf;

use medic_promql::testscript::{run as run_script, Outcome};

/// Arguments of `medic promql test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test scripts in Prometheus's `.test` format.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Also list passing evals.
    #[arg(long, short)]
    verbose: bool,
}

/// Prints each failing eval with file:line, and a closing `N passed, M failed`.
/// Returns whether everything passed.
pub fn test(a: TestArgs) -> anyhow::Result<bool> {
    let (mut passed, mut failed) = (0, 0);
    for f in &a.files {
        let text =
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        for e in run_script(&text).evals {
            match &e.outcome {
                Outcome::Passed => {
                    passed += 1;
                    if a.verbose {
                        println!("PASS {}:{} {}", f.display(), e.line, e.expr);
                    }
                }
                Outcome::Failed(why) => {
                    failed += 1;
                    println!("FAIL {}:{} {}\n     {why}", f.display(), e.line, e.expr);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
