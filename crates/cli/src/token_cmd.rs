//! `medic token`: bearer tokens of a running medic made, listed and revoked (admin only). A
//! new token is printed once; medic keeps only its hash.

use serde_json::{json, Value};

use crate::client::{ms_time, table, text, Remote};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Makes a token and prints it once (medic stores only its SHA-256).
    Create {
        /// A name for people and the audit log (`prometheus-eu`, `ci-deploy`).
        name: String,
        /// admin, sre, developer, viewer, ingest, or a role of `auth.roles`.
        #[arg(long)]
        role: String,
        /// Labels its acks, silences and triggers are limited to: `'{service="checkout"}'`
        /// (required for developer).
        #[arg(long, default_value = "")]
        scope: String,
        /// Expires this long from now (`90d`, `12h`); default: never.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Tokens from the configuration and those made here, revoked and expired ones too.
    List,
    /// Revokes a token by id or name: it stops working at once.
    Revoke {
        /// The id `token list` shows, or the name of a live token.
        id: String,
    },
}

/// Runs `medic token …`.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let r = &args.remote;
    match args.what {
        TokenCommand::Create {
            name,
            role,
            scope,
            expires_in,
        } => {
            let mut body = json!({"name": name, "role": role, "scope": scope});
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            let v = r.call(
                reqwest::Method::POST,
                "/api/v1/medic/tokens",
                &[],
                Some(body),
            )?;
            if r.print_json(&v)? {
                return Ok(());
            }
            let d = &v["data"];
            println!("{}", d["token"].as_str().unwrap_or_default());
            eprintln!(
                "token {} ({}) made for role {}{}; it is shown this once, medic keeps only its hash",
                text(d, "name"),
                text(d, "id"),
                text(d, "role"),
                match d["expires_at"].as_i64() {
                    Some(_) => format!(", expires {}", ms_time(&d["expires_at"])),
                    None => String::new(),
                }
            );
            Ok(())
        }
        TokenCommand::List => {
            let v = r.get("/api/v1/medic/tokens", &[])?;
            if r.print_json(&v)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        text(t, "name"),
                        text(t, "id"),
                        text(t, "role"),
                        text(t, "scope"),
                        text(t, "state"),
                        text(t, "source"),
                        opt_time(&t["expires_at"]),
                        text(t, "created_by"),
                    ]
                })
                .collect();
            table(
                &[
                    "NAME",
                    "ID",
                    "ROLE",
                    "SCOPE",
                    "STATE",
                    "SOURCE",
                    "EXPIRES",
                    "CREATED BY",
                ],
                &rows,
            );
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let path = format!("/api/v1/medic/tokens/{}", url_path_segment(&id));
            let v = r.call(reqwest::Method::DELETE, &path, &[], None)?;
            if !r.print_json(&v)? {
                println!(
                    "revoked {} ({})",
                    text(&v["data"], "name"),
                    text(&v["data"], "id")
                );
            }
            Ok(())
        }
    }
}

fn opt_time(v: &Value) -> String {
    if v.is_null() {
        "never".into()
    } else {
        ms_time(v)
    }
}

/// `s` escaped for one path segment.
fn url_path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
