//! `medic query`: PromQL against a running medic, printed as a table or as JSON.

use anyhow::{bail, Context};

/// Arguments of `medic query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The PromQL expression.
    expr: String,

    /// medic's base URL.
    #[arg(long, env = "MEDIC_URL", default_value = "http://127.0.0.1:9099")]
    url: String,

    /// Evaluation time for an instant query (RFC 3339 or Unix seconds; default now).
    #[arg(long, conflicts_with = "range")]
    time: Option<String>,

    /// Range query: START END STEP (times as RFC 3339 or Unix seconds, STEP like 15s or 60).
    #[arg(long, num_args = 3, value_names = ["START", "END", "STEP"])]
    range: Option<Vec<String>>,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// The API's `data` object, for scripts.
    Json,
}

/// Runs the query; errors from medic are reported with their type and message.
pub fn run(a: QueryArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (path, mut params) = match &a.range {
        Some(r) => (
            "/api/v1/query_range",
            vec![
                ("start", r[0].clone()),
                ("end", r[1].clone()),
                ("step", r[2].clone()),
            ],
        ),
        None => (
            "/api/v1/query",
            a.time.iter().map(|t| ("time", t.clone())).collect(),
        ),
    };
    params.push(("query", a.expr.clone()));
    let url = format!("{}{path}", a.url.trim_end_matches('/'));
    let body: serde_json::Value = rt.block_on(async {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(&url)
            .form(&params)
            .send()
            .await
            .with_context(|| format!("cannot reach medic at {}", a.url))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .with_context(|| format!("{url} answered {status} without JSON"))?;
        anyhow::Ok(body)
    })?;
    if body["status"] != "success" {
        bail!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("unknown error")
        );
    }
    let data = &body["data"];
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(data)?),
        Format::Table => print_table(data),
    }
    Ok(())
}

fn labels(m: &serde_json::Value) -> String {
    let obj = m.as_object().cloned().unwrap_or_default();
    let name = obj
        .get("__name__")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

fn time(v: &serde_json::Value) -> String {
    let ms = (v.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
    medic_model::format_rfc3339(ms)
}

fn print_table(data: &serde_json::Value) {
    let mut rows: Vec<[String; 3]> = Vec::new();
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            let r = &data["result"];
            rows.push([
                "".into(),
                time(&r[0]),
                r[1].as_str().unwrap_or("").to_string(),
            ]);
        }
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                rows.push([
                    labels(&s["metric"]),
                    time(&s["value"][0]),
                    s["value"][1].as_str().unwrap_or("").to_string(),
                ]);
            }
        }
        _ => {
            for s in data["result"].as_array().into_iter().flatten() {
                let l = labels(&s["metric"]);
                for (i, p) in s["values"].as_array().into_iter().flatten().enumerate() {
                    let name = if i == 0 { l.clone() } else { String::new() };
                    rows.push([name, time(&p[0]), p[1].as_str().unwrap_or("").to_string()]);
                }
            }
        }
    }
    if rows.is_empty() {
        println!("(no data)");
        return;
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(6);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max(4);
    println!("{:w0$}  {:w1$}  VALUE", "SERIES", "TIME");
    for r in rows {
        println!("{:w0$}  {:w1$}  {}", r[0], r[1], r[2]);
    }
}
