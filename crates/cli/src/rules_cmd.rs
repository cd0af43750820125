//! `medic rules check` and `medic rules test`: promtool's `check rules` and `test rules` for
//! medic's rules engine (which also knows medic's own rule fields).

use std::path::PathBuf;

/// Arguments of `medic rules check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Rule files in Prometheus's format.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Ignore fields medic does not know instead of failing on them.
    #[arg(long)]
    ignore_unknown_fields: bool,
}

impl CheckArgs {
    /// Checks `files` strictly, as the server loads them.
    pub fn files(files: Vec<PathBuf>) -> CheckArgs {
        CheckArgs {
            files,
            ignore_unknown_fields: false,
        }
    }
}

/// Arguments of `medic rules test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Unit-test files in promtool's format.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Only run test groups whose name matches this regex (repeatable; any may match).
    #[arg(long)]
    run: Vec<String>,

    /// Ignore fields medic does not know in the rule files.
    #[arg(long)]
    ignore_unknown_fields: bool,
}

/// Checks every file, printing each problem with file, line, group and rule. Returns whether
/// all files are valid.
pub fn check(a: CheckArgs) -> bool {
    let mut ok = true;
    for f in &a.files {
        println!("Checking {}", f.display());
        match medic_rules::file::load(f, a.ignore_unknown_fields) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found");
            }
            Err(errs) => {
                ok = false;
                eprintln!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                }
            }
        }
        println!();
    }
    ok
}

/// Runs unit-test files; returns whether all passed.
pub fn test(a: TestArgs) -> bool {
    medic_rules::unittest::run_files(
        &a.files,
        &medic_rules::unittest::Options {
            run: a.run,
            ignore_unknown_fields: a.ignore_unknown_fields,
        },
    )
}
