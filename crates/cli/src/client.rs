//! What every command that talks to a running medic shares: the HTTP client (`--url`,
//! `--format`, errors with the server's reason), tables that fit the terminal, and the CLI's
//! one time format.

use anyhow::{bail, Context};
use serde_json::Value;

/// Where medic is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Remote {
    /// medic's base URL.
    #[arg(
        long,
        env = "MEDIC_URL",
        default_value = "http://127.0.0.1:9099",
        global = true
    )]
    url: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    format: Format,
    /// A bearer token for a medic with `auth:` configured.
    #[arg(long, env = "MEDIC_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Basic-auth credentials as `user:password` for a medic with `auth:` configured.
    #[arg(long, env = "MEDIC_USER", global = true, hide_env_values = true)]
    user: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// The API's JSON, for scripts.
    Json,
}

impl Remote {
    /// A client for commands whose own `--format` is not the table/JSON choice.
    pub(crate) fn with(url: String, token: Option<String>, user: Option<String>) -> Remote {
        Remote {
            url,
            format: Format::Table,
            token,
            user,
        }
    }

    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut req = reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()?
                .request(method, &url)
                .query(query);
            if let Some(b) = body {
                req = req.json(&b);
            }
            req = self.authorize(req);
            let resp = req
                .send()
                .await
                .with_context(|| format!("cannot reach medic at {}", self.url))?;
            let status = resp.status();
            let text = resp.text().await?;
            let v: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text.trim().to_string()))
            };
            if !status.is_success() {
                let msg = v
                    .get("error")
                    .and_then(Value::as_str)
                    .or_else(|| v.as_str())
                    .unwrap_or("no reason given")
                    .to_string();
                bail!("{url}: {status}: {msg}");
            }
            Ok(v)
        })
    }

    /// The request with this client's credentials (`--token` or `--user`).
    pub(crate) fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(t) = &self.token {
            req.bearer_auth(t)
        } else if let Some(u) = &self.user {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            req.basic_auth(user, Some(pass))
        } else {
            req
        }
    }

    /// medic's base URL, without a trailing `/`.
    pub(crate) fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    pub(crate) fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, query, None)
    }

    pub(crate) fn print_json(&self, v: &Value) -> anyhow::Result<bool> {
        if matches!(self.format, Format::Json) {
            println!("{}", serde_json::to_string_pretty(v)?);
            return Ok(true);
        }
        Ok(false)
    }
}

/// Prints rows under headers in aligned columns.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    print!("{}", table_string(headers, rows));
}

/// The terminal's width in columns, when standard output is a terminal.
fn terminal_width() -> Option<usize> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the winsize we pass; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// `s` cut to `width` characters, with `…` where it was cut.
fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Rows under headers in aligned columns, a line each. On a terminal, the widest columns are
/// cut (with `…`) until a row fits its width; piped output is never cut.
pub(crate) fn table_string(headers: &[&str], rows: &[Vec<String>]) -> String {
    table_string_width(headers, rows, terminal_width())
}

fn table_string_width(headers: &[&str], rows: &[Vec<String>], width: Option<usize>) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    if let Some(max) = width {
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while total(&w) > max {
            let (i, &widest) = w
                .iter()
                .enumerate()
                .max_by_key(|(_, x)| **x)
                .expect("columns");
            if widest <= 12 {
                break;
            }
            w[i] = (widest - (total(&w) - max)).max(12).min(widest - 1);
        }
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| truncate(c, w[i]))
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:width$}  ", width = w[i]));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        line(r);
    }
    out
}

/// An RFC 3339 time from the API, in the CLI's one format (UTC, to the second, with its zone).
pub(crate) fn short_time(s: &Value) -> String {
    let s = s.as_str().unwrap_or("");
    match medic_model::parse_rfc3339(s) {
        Some(ms) => medic_model::format_human_time(ms),
        None => s.to_string(),
    }
}

/// A time in seconds (Prometheus's API) as RFC 3339, or `-` when absent.
pub(crate) fn secs_time(v: &Value) -> String {
    v.as_f64()
        .map(|s| medic_model::format_rfc3339((s * 1000.0).round() as i64))
        .unwrap_or_else(|| "-".into())
}

/// A time in milliseconds (medic's heal API) in the CLI's format, or nothing when absent.
pub(crate) fn ms_time(v: &Value) -> String {
    v.as_i64()
        .filter(|&t| t > 0)
        .map(medic_model::format_human_time)
        .unwrap_or_default()
}

/// A string field, or `""`.
pub(crate) fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

/// `s` as one URL path segment: everything but RFC 3986's unreserved characters
/// percent-encoded, so no argument can add a `/`, `?` or `#` to the path it is put in.
pub(crate) fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_fit_the_terminal_by_cutting_the_widest_column() {
        let rows = vec![vec!["a1".to_string(), "x".repeat(100), "short".to_string()]];
        let t = table_string_width(&["ID", "LABELS", "STATE"], &rows, Some(40));
        for l in t.lines() {
            assert!(l.chars().count() <= 40, "{l:?}");
        }
        assert!(t.contains('…'), "{t}");
        // Piped output is never cut.
        let t = table_string_width(&["ID", "LABELS", "STATE"], &rows, None);
        assert!(t.contains(&"x".repeat(100)));
    }

    #[test]
    fn a_path_segment_cannot_leave_its_segment() {
        assert_eq!(
            path_segment("checkout-availability_1.x~"),
            "checkout-availability_1.x~"
        );
        assert_eq!(path_segment("../a?b#c d/é"), "..%2Fa%3Fb%23c%20d%2F%C3%A9");
    }
}
