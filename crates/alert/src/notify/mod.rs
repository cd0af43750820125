//! Receivers' integrations: the webhook, Slack, PagerDuty (Events API v2) and e-mail
//! messages, built from the templates and sent over HTTP (reqwest, rustls) or SMTP (lettre).
//! Errors say whether a retry can help: network errors, 5xx and 429 are retryable, other
//! 4xx are permanent.

mod email;
use email::{email, send_email, EmailTarget};
mod payloads;
use payloads::{pagerduty_payload, slack_payload};

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::config::{
    EmailConfig, HttpConfig, PagerdutyConfig, ReceiverConfig, SlackConfig, WebhookConfig,
};
use crate::template::{Data, FieldTemplate, Templates};
use crate::types::{rfc3339_nano, Alert};

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub retryable: bool,
    pub message: String,
    /// A short reason for metrics: `network`, `5xx`, `4xx`, `429`, `template`, `unsupported`.
    pub reason: &'static str,
}

impl NotifyError {
    pub(crate) fn permanent(reason: &'static str, message: impl Into<String>) -> Self {
        NotifyError {
            retryable: false,
            message: message.into(),
            reason,
        }
    }
}

/// One integration of a receiver, ready to send.
#[derive(Debug)]
pub struct Integration {
    /// `webhook`, `slack`, `pagerduty`, `email`, or an unsupported kind.
    pub kind: &'static str,
    /// Position among the receiver's integrations of this kind.
    pub index: usize,
    pub send_resolved: bool,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Webhook {
        url: String,
        max_alerts: u64,
        client: reqwest::Client,
    },
    Slack {
        url: String,
        client: reqwest::Client,
        fields: Box<SlackFields>,
    },
    PagerDuty {
        url: String,
        routing_key: String,
        client: reqwest::Client,
        fields: Box<PagerdutyFields>,
    },
    Email(Box<EmailTarget>),
    /// Discord, Teams, Telegram, Webex, Opsgenie, VictorOps, Pushover, WeChat.
    Chat(Box<crate::receivers::ChatTarget>),
}

#[derive(Debug)]
struct SlackFields {
    channel: FieldTemplate,
    username: FieldTemplate,
    color: FieldTemplate,
    title: FieldTemplate,
    title_link: FieldTemplate,
    pretext: FieldTemplate,
    text: FieldTemplate,
    footer: FieldTemplate,
    fallback: FieldTemplate,
    callback_id: FieldTemplate,
    icon_emoji: FieldTemplate,
    icon_url: FieldTemplate,
    image_url: FieldTemplate,
    thumb_url: FieldTemplate,
    fields: Vec<(FieldTemplate, FieldTemplate, Option<bool>)>,
    short_fields: bool,
    link_names: bool,
    mrkdwn_in: Vec<String>,
    actions: Vec<Json>,
}

#[derive(Debug)]
struct PagerdutyFields {
    client: FieldTemplate,
    client_url: FieldTemplate,
    description: FieldTemplate,
    details: Vec<(String, FieldTemplate)>,
    source: FieldTemplate,
    severity: FieldTemplate,
    class: FieldTemplate,
    component: FieldTemplate,
    group: FieldTemplate,
    images: Vec<(FieldTemplate, FieldTemplate, FieldTemplate)>,
    links: Vec<(FieldTemplate, FieldTemplate)>,
}

/// How long one HTTP request or SMTP session may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack and PagerDuty cut texts longer than this.
const MAX_TITLE_RUNES: usize = 1024;

pub(crate) fn read_secret(
    inline: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<String, String> {
    if let Some(s) = inline {
        return Ok(s.clone());
    }
    if let Some(f) = file {
        return std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{what}: cannot read {f}: {e}"));
    }
    Err(format!("{what} missing"))
}

/// Builds an HTTP client for an integration's `http_config`.
pub fn http_client(h: &Option<HttpConfig>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")));
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(h) = h {
        if let Some(ba) = &h.basic_auth {
            let pw = read_secret(&ba.password, &ba.password_file, "basic_auth password")
                .unwrap_or_default();
            let token = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{}:{pw}", ba.username),
            );
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Basic {token}")
                    .parse()
                    .map_err(|_| "basic_auth: invalid characters")?,
            );
        }
        let bearer = match (&h.authorization, &h.bearer_token, &h.bearer_token_file) {
            (Some(a), _, _) => Some((
                a.kind.clone().unwrap_or_else(|| "Bearer".into()),
                read_secret(
                    &a.credentials,
                    &a.credentials_file,
                    "authorization credentials",
                )?,
            )),
            (None, t @ Some(_), f) | (None, t @ None, f @ Some(_)) => {
                Some(("Bearer".into(), read_secret(t, f, "bearer_token")?))
            }
            _ => None,
        };
        if let Some((kind, cred)) = bearer {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("{kind} {cred}")
                    .parse()
                    .map_err(|_| "authorization: invalid characters")?,
            );
        }
        if h.tls_config.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &h.tls_config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("tls_config.ca_file {ca}: {e}"))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("tls_config.ca_file {ca}: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        if let Some(p) = &h.proxy_url {
            b = b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url: {e}"))?);
        }
        if h.follow_redirects == Some(false) {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
    }
    b.default_headers(headers)
        .build()
        .map_err(|e| e.to_string())
}

/// Builds every integration of a receiver. Errors name the integration and the field.
pub fn build_receiver(
    r: &ReceiverConfig,
    g: &crate::config::GlobalConfig,
    t: &Templates,
) -> Result<Vec<Integration>, String> {
    crate::receivers::refuse_unsupported(&r.name, r.sns_configs.len())?;
    let mut out = Vec::new();
    for (i, w) in r.webhook_configs.iter().enumerate() {
        out.push(
            webhook(w, i)
                .map_err(|e| format!("receiver {:?} webhook_configs[{i}]: {e}", r.name))?,
        );
    }
    for (i, s) in r.slack_configs.iter().enumerate() {
        out.push(
            slack(s, i, t).map_err(|e| format!("receiver {:?} slack_configs[{i}]: {e}", r.name))?,
        );
    }
    for (i, p) in r.pagerduty_configs.iter().enumerate() {
        out.push(
            pagerduty(p, i, t)
                .map_err(|e| format!("receiver {:?} pagerduty_configs[{i}]: {e}", r.name))?,
        );
    }
    for (i, e) in r.email_configs.iter().enumerate() {
        out.push(
            email(e, i, t)
                .map_err(|err| format!("receiver {:?} email_configs[{i}]: {err}", r.name))?,
        );
    }
    for (kind, configs) in r.chat_configs() {
        for (index, raw) in configs.iter().enumerate() {
            let (send_resolved, target) = crate::receivers::build(kind, raw, g, t)
                .map_err(|e| format!("receiver {:?} {kind}_configs[{index}]: {e}", r.name))?;
            out.push(Integration {
                kind,
                index,
                send_resolved,
                target: Target::Chat(Box::new(target)),
            });
        }
    }
    Ok(out)
}

fn webhook(w: &WebhookConfig, index: usize) -> Result<Integration, String> {
    let url = read_secret(&w.url, &w.url_file, "url")?;
    Ok(Integration {
        kind: "webhook",
        index,
        send_resolved: w.send_resolved,
        target: Target::Webhook {
            url,
            max_alerts: w.max_alerts,
            client: http_client(&w.http_config)?,
        },
    })
}

fn slack(s: &SlackConfig, index: usize, t: &Templates) -> Result<Integration, String> {
    let url = read_secret(&s.api_url, &s.api_url_file, "api_url")?;
    let f = |name: &str, text: &str| t.field(name, text).map_err(|e| format!("{name}: {e}"));
    let fields = SlackFields {
        channel: f("channel", &s.channel)?,
        username: f("username", &s.username)?,
        color: f("color", &s.color)?,
        title: f("title", &s.title)?,
        title_link: f("title_link", &s.title_link)?,
        pretext: f("pretext", &s.pretext)?,
        text: f("text", &s.text)?,
        footer: f("footer", &s.footer)?,
        fallback: f("fallback", &s.fallback)?,
        callback_id: f("callback_id", &s.callback_id)?,
        icon_emoji: f("icon_emoji", &s.icon_emoji)?,
        icon_url: f("icon_url", &s.icon_url)?,
        image_url: f("image_url", &s.image_url)?,
        thumb_url: f("thumb_url", &s.thumb_url)?,
        fields: s
            .fields
            .iter()
            .map(|x| {
                Ok((
                    f("fields.title", &x.title)?,
                    f("fields.value", &x.value)?,
                    x.short,
                ))
            })
            .collect::<Result<_, String>>()?,
        short_fields: s.short_fields,
        link_names: s.link_names,
        mrkdwn_in: s.mrkdwn_in.clone(),
        actions: s
            .actions
            .iter()
            .map(|a| {
                let mut m = serde_json::Map::new();
                m.insert("type".into(), json!(a.kind));
                m.insert("text".into(), json!(a.text));
                for (k, v) in [
                    ("url", &a.url),
                    ("style", &a.style),
                    ("name", &a.name),
                    ("value", &a.value),
                ] {
                    if !v.is_empty() {
                        m.insert(k.into(), json!(v));
                    }
                }
                Json::Object(m)
            })
            .collect(),
    };
    Ok(Integration {
        kind: "slack",
        index,
        send_resolved: s.send_resolved,
        target: Target::Slack {
            url,
            client: http_client(&s.http_config)?,
            fields: Box::new(fields),
        },
    })
}

fn pagerduty(p: &PagerdutyConfig, index: usize, t: &Templates) -> Result<Integration, String> {
    if p.service_key.is_some() || p.service_key_file.is_some() {
        return Err("service_key (Events API v1) is not supported by medic; use routing_key (Events API v2)".into());
    }
    let routing_key = read_secret(&p.routing_key, &p.routing_key_file, "routing_key")?;
    let f = |name: &str, text: &str| t.field(name, text).map_err(|e| format!("{name}: {e}"));
    let fields = PagerdutyFields {
        client: f("client", &p.client)?,
        client_url: f("client_url", &p.client_url)?,
        description: f("description", &p.description)?,
        details: p
            .details
            .iter()
            .map(|(k, v)| Ok((k.clone(), f(&format!("details.{k}"), v)?)))
            .collect::<Result<_, String>>()?,
        source: f("source", &p.source)?,
        severity: f("severity", &p.severity)?,
        class: f("class", &p.class)?,
        component: f("component", &p.component)?,
        group: f("group", &p.group)?,
        images: p
            .images
            .iter()
            .map(|i| {
                Ok((
                    f("images.src", &i.src)?,
                    f("images.alt", &i.alt)?,
                    f("images.href", &i.href)?,
                ))
            })
            .collect::<Result<_, String>>()?,
        links: p
            .links
            .iter()
            .map(|l| Ok((f("links.href", &l.href)?, f("links.text", &l.text)?)))
            .collect::<Result<_, String>>()?,
    };
    Ok(Integration {
        kind: "pagerduty",
        index,
        send_resolved: p.send_resolved,
        target: Target::PagerDuty {
            url: p.url.clone().unwrap_or_default(),
            routing_key,
            client: http_client(&p.http_config)?,
            fields: Box::new(fields),
        },
    })
}

fn truncate_runes(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn render(f: &FieldTemplate, v: &medic_template::Value) -> Result<String, NotifyError> {
    f.render(v)
        .map_err(|e| NotifyError::permanent("template", e))
}

/// The Alertmanager webhook payload (version 4).
pub fn webhook_payload(data: &Data, group_key: &str, max_alerts: u64, now: i64) -> Json {
    let total = data.alerts.len();
    let keep = if max_alerts == 0 {
        total
    } else {
        total.min(max_alerts as usize)
    };
    let labels = |l: &medic_model::Labels| {
        Json::Object(
            l.iter()
                .map(|l| (l.name.to_string(), json!(&*l.value)))
                .collect(),
        )
    };
    let alerts: Vec<Json> = data.alerts[..keep]
        .iter()
        .map(|a| alert_json(a, now, &labels))
        .collect();
    json!({
        "receiver": data.receiver,
        "status": data.status,
        "alerts": alerts,
        "groupLabels": labels(&data.group_labels),
        "commonLabels": labels(&data.common_labels),
        "commonAnnotations": data.common_annotations,
        "externalURL": data.external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": total - keep,
    })
}

fn alert_json(a: &Alert, now: i64, labels: &dyn Fn(&medic_model::Labels) -> Json) -> Json {
    json!({
        "status": a.status(now).as_str(),
        "labels": labels(&a.labels),
        "annotations": a.annotations,
        "startsAt": rfc3339_nano(a.starts_at),
        "endsAt": rfc3339_nano(a.ends_at),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint().to_string(),
    })
}

/// PagerDuty's deduplication key for a group: SHA-256 of the group key, in hex.
pub fn group_key_hash(group_key: &str) -> String {
    let d = Sha256::digest(group_key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Integration {
    /// `webhook[0]`: the name used in the notification log and in metrics.
    pub fn name(&self) -> String {
        format!("{}[{}]", self.kind, self.index)
    }

    /// Sends one message for `data`.
    pub async fn notify(&self, data: &Data, group_key: &str, now: i64) -> Result<(), NotifyError> {
        match &self.target {
            Target::Webhook {
                url,
                max_alerts,
                client,
            } => {
                let body = webhook_payload(data, group_key, *max_alerts, now);
                post_json(client, url, &body).await
            }
            Target::Slack {
                url,
                client,
                fields,
            } => {
                let v = data.to_value(now);
                let body = slack_payload(fields, &v)?;
                post_json(client, url, &body).await
            }
            Target::PagerDuty {
                url,
                routing_key,
                client,
                fields,
            } => {
                let v = data.to_value(now);
                let body = pagerduty_payload(fields, &v, routing_key, data.status, group_key)?;
                post_json(client, url, &body).await
            }
            Target::Email(e) => send_email(e, &data.to_value(now)).await,
            Target::Chat(c) => c.send(data, group_key, now).await,
        }
    }
}

/// A document for people (a report), in the forms receivers take.
#[derive(Debug, Clone)]
pub struct Document {
    /// The e-mail subject, the Slack message's first line.
    pub title: String,
    /// What the document is (`incident_report`, `report`), for webhook consumers.
    pub kind: String,
    pub markdown: String,
    pub html: String,
    /// A few lines for chat receivers.
    pub summary: String,
}

/// Slack's limit on a message's text.
const MAX_SLACK_TEXT: usize = 3000;

impl Integration {
    /// Sends a document: e-mail gets it as its HTML body (the Markdown as the plain-text part);
    /// a webhook gets `{"kind", "title", "markdown", "html"}` as JSON; Slack gets the title and
    /// the summary. Other kinds cannot carry it: a permanent error says so.
    pub async fn send_document(&self, doc: &Document) -> Result<(), NotifyError> {
        match &self.target {
            Target::Webhook { url, client, .. } => {
                let body = json!({
                    "version": "1",
                    "kind": doc.kind,
                    "title": doc.title,
                    "markdown": doc.markdown,
                    "html": doc.html,
                });
                post_json(client, url, &body).await
            }
            Target::Slack { url, client, .. } => {
                let text =
                    truncate_runes(format!("*{}*\n{}", doc.title, doc.summary), MAX_SLACK_TEXT);
                post_json(client, url, &json!({ "text": text, "mrkdwn": true })).await
            }
            Target::Email(e) => {
                email::send_email_document(e, &doc.title, &doc.markdown, &doc.html).await
            }
            Target::PagerDuty { .. } | Target::Chat(_) => Err(NotifyError::permanent(
                "unsupported",
                format!(
                    "a {} receiver cannot carry a document; use e-mail, Slack or a webhook",
                    self.kind
                ),
            )),
        }
    }
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Json) -> Result<(), NotifyError> {
    send_json(client, reqwest::Method::POST, url, &[], body).await
}

/// Sends a JSON body with extra headers; classifies the outcome (see [`NotifyError`]).
pub(crate) async fn send_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, String)],
    body: &Json,
) -> Result<(), NotifyError> {
    let mut req = client
        .request(method.clone(), url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    check(method.as_str(), url, req.send().await)
        .await
        .map(|_| ())
}

/// Sends a form (`application/x-www-form-urlencoded`) body.
pub(crate) async fn send_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, String)],
) -> Result<(), NotifyError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let req = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body);
    check("POST", url, req.send().await).await.map(|_| ())
}

/// GETs a JSON document.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Result<Json, NotifyError> {
    let resp = check("GET", url, client.get(url).send().await).await?;
    let bytes = resp.bytes().await.map_err(|e| NotifyError {
        retryable: true,
        message: format!(
            "GET {}: {}",
            redact_url(url),
            medic_model::error_chain(&e.without_url())
        ),
        reason: "network",
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        NotifyError::permanent("4xx", format!("GET {}: not JSON: {e}", redact_url(url)))
    })
}

/// A response that is a success, or the error that says whether retrying can help. Neither
/// the URL's query nor its credentials appear in the message (webhook URLs carry keys).
async fn check(
    method: &str,
    url: &str,
    sent: reqwest::Result<reqwest::Response>,
) -> Result<reqwest::Response, NotifyError> {
    let resp = sent.map_err(|e| NotifyError {
        retryable: true,
        message: format!(
            "{method} {}: {}",
            redact_url(url),
            medic_model::error_chain(&e.without_url())
        ),
        reason: "network",
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(512).collect();
    let (retryable, reason) = if status.as_u16() == 429 {
        (true, "429")
    } else if status.is_server_error() {
        (true, "5xx")
    } else {
        (false, "4xx")
    };
    Err(NotifyError {
        retryable,
        message: format!(
            "{method} {}: unexpected status {status}: {text}",
            redact_url(url)
        ),
        reason,
    })
}

/// A URL for logs: scheme, host and path, without credentials or query (webhook URLs often
/// carry tokens).
pub fn redact_url(u: &str) -> String {
    match reqwest::Url::parse(u) {
        Ok(p) => format!(
            "{}://{}{}",
            p.scheme(),
            p.host_str().unwrap_or(""),
            p.port().map(|x| format!(":{x}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_key_hash_is_sha256_hex() {
        assert_eq!(
            group_key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn urls_in_errors_lose_their_secrets() {
        assert_eq!(
            redact_url("https://u:p@hooks.example.com:8443/services/T/B/SECRET?x=1"),
            "https://hooks.example.com:8443"
        );
    }
}
