//! `medic alerts`, `medic silence` and `medic ack`: the alert manager of a running medic, over
//! its HTTP API. Tables for people, `--format json` for scripts; exit 1 with the server's
//! reason when a request is refused.

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::{short_time, table, Remote};

fn labels_text(v: &Value, skip: &[&str]) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The `filter` parameters for matchers, checked locally first so a typo is reported before
/// anything is sent.
fn filter_query(ms: &[String]) -> anyhow::Result<Vec<(&'static str, String)>> {
    for m in ms {
        medic_alert::matchers::parse_matchers(m)
            .map_err(|e| anyhow::anyhow!("matcher {m:?}: {e}"))?;
    }
    Ok(ms.iter().map(|m| ("filter", m.clone())).collect())
}

// ---- medic alerts ----

/// Arguments of `medic alerts`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    what: Option<AlertsCommand>,
    #[command(flatten)]
    list: ListArgs,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, clap::Subcommand)]
enum AlertsCommand {
    /// List alerts (the default).
    List(ListArgs),
    /// List alert groups with their ids (for `medic ack`) and acknowledgements.
    Groups(GroupsArgs),
    /// Show the history of alerts: firing, resolved, notified, acknowledged, escalated.
    History(HistoryArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct ListArgs {
    /// Alertmanager matchers, e.g. `severity=critical` `instance=~"db.*"`.
    matchers: Vec<String>,
    /// Also show silenced alerts.
    #[arg(long)]
    silenced: bool,
    /// Also show inhibited alerts.
    #[arg(long)]
    inhibited: bool,
}

#[derive(Debug, clap::Args)]
struct GroupsArgs {
    /// Alertmanager matchers on the groups' alerts.
    matchers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct HistoryArgs {
    /// Alertmanager matchers on the alerts' (or groups') labels.
    matchers: Vec<String>,
    /// Only this group (its id or key).
    #[arg(long)]
    group: Option<String>,
    /// Only events since this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// Only these kinds (firing, resolved, notified, notify_failed, acked, escalated).
    #[arg(long)]
    kind: Vec<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub fn alerts(a: AlertsArgs) -> anyhow::Result<()> {
    let r = &a.remote;
    match a.what {
        None => list(r, &a.list),
        Some(AlertsCommand::List(l)) => list(r, &l),
        Some(AlertsCommand::Groups(g)) => groups(r, &g),
        Some(AlertsCommand::History(h)) => history(r, &h),
    }
}

fn list(r: &Remote, a: &ListArgs) -> anyhow::Result<()> {
    let mut q = filter_query(&a.matchers)?;
    q.push(("silenced", a.silenced.to_string()));
    q.push(("inhibited", a.inhibited.to_string()));
    let v = r.get("/api/v2/alerts", &q)?;
    if r.print_json(&v)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|al| {
            vec![
                al["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                al["status"]["state"].as_str().unwrap_or("").to_string(),
                short_time(&al["startsAt"]),
                labels_text(&al["labels"], &["alertname"]),
                al["annotations"]["summary"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    table(&["ALERT", "STATE", "SINCE", "LABELS", "SUMMARY"], &rows);
    Ok(())
}

fn groups(r: &Remote, a: &GroupsArgs) -> anyhow::Result<()> {
    let q = filter_query(&a.matchers)?;
    let v = r.get("/api/v1/medic/alerts/groups", &q)?;
    if r.print_json(&v["data"])? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let ack = match &g["ack"] {
                Value::Null => String::new(),
                a => format!(
                    "{} until {}",
                    a["author"].as_str().unwrap_or(""),
                    short_time(&a["expiresAt"])
                ),
            };
            vec![
                g["id"].as_str().unwrap_or("").to_string(),
                g["receiver"].as_str().unwrap_or("").to_string(),
                labels_text(&g["labels"], &[]),
                g["alerts"].as_array().map_or(0, Vec::len).to_string(),
                ack,
            ]
        })
        .collect();
    table(&["ID", "RECEIVER", "GROUP", "ALERTS", "ACKED"], &rows);
    Ok(())
}

fn history(r: &Remote, a: &HistoryArgs) -> anyhow::Result<()> {
    let mut q = filter_query(&a.matchers)?;
    if let Some(g) = &a.group {
        q.push(("group", g.clone()));
    }
    if let Some(s) = &a.since {
        q.push(("since", s.clone()));
    }
    for k in &a.kind {
        q.push(("kind", k.clone()));
    }
    q.push(("limit", a.limit.to_string()));
    let v = r.get("/api/v1/medic/alerts/history", &q)?;
    if r.print_json(&v["data"])? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let who = [
                e["receiver"].as_str().unwrap_or(""),
                e["author"].as_str().unwrap_or(""),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
            vec![
                short_time(&e["at"]),
                e["kind"].as_str().unwrap_or("").to_string(),
                labels_text(&e["labels"], &[]),
                who,
                e["detail"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    table(&["TIME", "EVENT", "LABELS", "BY", "DETAIL"], &rows);
    Ok(())
}

// ---- medic silence ----

/// Arguments of `medic silence`.
#[derive(Debug, clap::Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    what: SilenceCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, clap::Subcommand)]
enum SilenceCommand {
    /// Silence the alerts matching MATCHERS; prints the new silence's id.
    Add(AddArgs),
    /// List silences (active and pending; --expired for expired ones too).
    List(SilenceListArgs),
    /// Expire silences now.
    Expire {
        /// Silence ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Alertmanager matchers, e.g. `alertname=DiskFull` `instance=~"db[12]"`.
    #[arg(required = true)]
    matchers: Vec<String>,
    /// Why (required, as in amtool).
    #[arg(long, short)]
    comment: String,
    /// Who (default: $USER).
    #[arg(long, short)]
    author: Option<String>,
    /// How long, from the start (e.g. 2h, 30m).
    #[arg(long, short, default_value = "1h")]
    duration: String,
    /// When it starts (RFC 3339; default now).
    #[arg(long)]
    start: Option<String>,
    /// Expire the silence as soon as the alerts it silenced have resolved.
    #[arg(long)]
    expire_on_resolve: bool,
}

#[derive(Debug, clap::Args)]
struct SilenceListArgs {
    /// Only silences whose matchers match these (as amtool's `silence query`).
    matchers: Vec<String>,
    /// Include expired silences.
    #[arg(long)]
    expired: bool,
}

pub fn silence(a: SilenceArgs) -> anyhow::Result<()> {
    let r = &a.remote;
    match a.what {
        SilenceCommand::Add(s) => {
            let mut matchers = Vec::new();
            for m in &s.matchers {
                for x in medic_alert::matchers::parse_matchers(m)
                    .map_err(|e| anyhow::anyhow!("matcher {m:?}: {e}"))?
                {
                    matchers.push(json!({
                        "name": x.name,
                        "value": x.value,
                        "isRegex": matches!(x.kind, medic_model::MatchType::Regexp | medic_model::MatchType::NotRegexp),
                        "isEqual": matches!(x.kind, medic_model::MatchType::Equal | medic_model::MatchType::Regexp),
                    }));
                }
            }
            let start = match &s.start {
                Some(t) => medic_model::parse_rfc3339(t)
                    .with_context(|| format!("--start {t:?} is not RFC 3339"))?,
                None => medic_model::Clock::now_ms(&medic_model::SystemClock),
            };
            let dur = medic_model::parse_duration(&s.duration)
                .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
            let author = s.author.or_else(current_user).context(
                "--author is required: no user name in $USER, $LOGNAME or the user database",
            )?;
            let body = json!({
                "matchers": matchers,
                "startsAt": medic_model::format_rfc3339(start),
                "endsAt": medic_model::format_rfc3339(start + dur.as_millis() as i64),
                "createdBy": author,
                "comment": s.comment,
                "expireOnResolve": s.expire_on_resolve,
            });
            let v = r.call(reqwest::Method::POST, "/api/v2/silences", &[], Some(body))?;
            if !r.print_json(&v)? {
                println!("{}", v["silenceID"].as_str().unwrap_or(""));
            }
            Ok(())
        }
        SilenceCommand::List(l) => {
            let q = filter_query(&l.matchers)?;
            let v = r.get("/api/v2/silences", &q)?;
            let shown: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| l.expired || s["status"]["state"] != "expired")
                .cloned()
                .collect();
            if r.print_json(&Value::Array(shown.clone()))? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = shown
                .iter()
                .map(|s| {
                    let ms = s["matchers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| {
                            let op = match (m["isRegex"].as_bool(), m["isEqual"].as_bool()) {
                                (Some(true), Some(false)) => "!~",
                                (Some(true), _) => "=~",
                                (_, Some(false)) => "!=",
                                _ => "=",
                            };
                            format!(
                                "{}{op}{}",
                                m["name"].as_str().unwrap_or(""),
                                medic_template::fmt::quote(m["value"].as_str().unwrap_or(""))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    vec![
                        s["id"].as_str().unwrap_or("").to_string(),
                        s["status"]["state"].as_str().unwrap_or("").to_string(),
                        ms,
                        short_time(&s["endsAt"]),
                        s["createdBy"].as_str().unwrap_or("").to_string(),
                        s["comment"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            table(&["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], &rows);
            Ok(())
        }
        SilenceCommand::Expire { ids } => {
            for id in &ids {
                r.call(
                    reqwest::Method::DELETE,
                    &format!("/api/v2/silence/{id}"),
                    &[],
                    None,
                )?;
                println!("expired {id}");
            }
            Ok(())
        }
    }
}

// ---- medic ack ----

/// Arguments of `medic ack`.
#[derive(Debug, clap::Args)]
pub struct AckArgs {
    /// The group: its id from `medic alerts groups` (a unique prefix is enough) or its key.
    group: String,
    /// What you are doing about it.
    #[arg(long, short, required_unless_present = "remove")]
    comment: Option<String>,
    /// Who (default: $USER).
    #[arg(long, short)]
    author: Option<String>,
    /// How long the acknowledgement lasts (default: the server's, 4h unless configured).
    #[arg(long, short)]
    duration: Option<String>,
    /// Remove the group's acknowledgement instead.
    #[arg(long, conflicts_with_all = ["comment", "duration"])]
    remove: bool,
    #[command(flatten)]
    remote: Remote,
}

pub fn ack(a: AckArgs) -> anyhow::Result<()> {
    let r = &a.remote;
    if a.remove {
        let v = r.call(
            reqwest::Method::DELETE,
            "/api/v1/medic/alerts/ack",
            &[("group", a.group.clone())],
            None,
        )?;
        if !r.print_json(&v["data"])? {
            println!(
                "acknowledgement removed from {}",
                v["data"]["groupKey"].as_str().unwrap_or("")
            );
        }
        return Ok(());
    }
    let author = a
        .author
        .or_else(current_user)
        .context("--author is required: no user name in $USER, $LOGNAME or the user database")?;
    let mut body =
        json!({"group": a.group, "author": author, "comment": a.comment.unwrap_or_default()});
    if let Some(d) = a.duration {
        body["duration"] = json!(d);
    }
    let v = r.call(
        reqwest::Method::POST,
        "/api/v1/medic/alerts/ack",
        &[],
        Some(body),
    )?;
    if !r.print_json(&v["data"])? {
        let d = &v["data"];
        println!(
            "acknowledged {} ({} firing alerts) until {}",
            d["groupKey"].as_str().unwrap_or(""),
            d["alerts"],
            short_time(&d["expiresAt"])
        );
    }
    Ok(())
}

/// Who runs the command, as amtool finds it: `$USER`, then `$LOGNAME`, then the user database
/// entry of the effective user id (containers and systemd units often set neither variable).
pub fn current_user() -> Option<String> {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    // SAFETY: getpwuid_r writes into the buffers we own and sizes we pass; `result` is null or
    // points into `pwd`, whose strings point into `buf`, all alive while read here.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}
