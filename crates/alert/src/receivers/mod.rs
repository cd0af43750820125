//! The receivers beyond webhook, Slack, PagerDuty and e-mail: Discord, Microsoft Teams,
//! Telegram, Webex, Opsgenie, VictorOps, Pushover and WeChat — each with Alertmanager 0.25's
//! configuration fields, defaults (globals included) and request shapes, so an existing
//! `alertmanager.yml` delivers the same messages. Amazon SNS is not delivered yet: a file that
//! uses it is refused at load with a message (see [`refuse_unsupported`]).

mod build;

use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::config::{GlobalConfig, HttpConfig};
use crate::notify::{group_key_hash, http_client, read_secret, NotifyError};
use crate::template::{Data, FieldTemplate, Templates};

fn yes() -> bool {
    true
}

fn t(s: &str) -> String {
    format!(r#"{{{{ template "{s}" . }}}}"#)
}

/// `discord_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscordConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    webhook_url: Option<String>,
    webhook_url_file: Option<String>,
    title: Option<String>,
    message: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `msteams_configs[]` (the Office 365 connector's MessageCard, as Alertmanager 0.25 sends).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamsConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    webhook_url: Option<String>,
    webhook_url_file: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    text: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `telegram_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelegramConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    api_url: Option<String>,
    bot_token: Option<String>,
    bot_token_file: Option<String>,
    chat_id: i64,
    message: Option<String>,
    #[serde(default)]
    disable_notifications: bool,
    parse_mode: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `webex_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebexConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    api_url: Option<String>,
    room_id: String,
    message: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `opsgenie_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpsgenieConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    api_key: Option<String>,
    api_key_file: Option<String>,
    api_url: Option<String>,
    message: Option<String>,
    description: Option<String>,
    source: Option<String>,
    #[serde(default)]
    details: std::collections::BTreeMap<String, String>,
    entity: Option<String>,
    #[serde(default)]
    responders: Vec<std::collections::BTreeMap<String, String>>,
    actions: Option<String>,
    tags: Option<String>,
    note: Option<String>,
    priority: Option<String>,
    #[serde(default)]
    update_alerts: bool,
    http_config: Option<HttpConfig>,
}

/// `victorops_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VictorOpsConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    api_key: Option<String>,
    api_key_file: Option<String>,
    api_url: Option<String>,
    routing_key: String,
    message_type: Option<String>,
    entity_display_name: Option<String>,
    state_message: Option<String>,
    monitoring_tool: Option<String>,
    #[serde(default)]
    custom_fields: std::collections::BTreeMap<String, String>,
    http_config: Option<HttpConfig>,
}

/// `pushover_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushoverConfig {
    #[serde(default = "yes")]
    send_resolved: bool,
    /// medic's own: Pushover's API endpoint (for tests and proxies); Alertmanager has it fixed.
    api_url: Option<String>,
    user_key: Option<String>,
    user_key_file: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    title: Option<String>,
    message: Option<String>,
    url: Option<String>,
    url_title: Option<String>,
    sound: Option<String>,
    priority: Option<String>,
    retry: Option<crate::config::Dur>,
    expire: Option<crate::config::Dur>,
    ttl: Option<crate::config::Dur>,
    #[serde(default)]
    html: bool,
    http_config: Option<HttpConfig>,
}

/// `wechat_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeChatConfig {
    #[serde(default)]
    send_resolved: bool,
    api_secret: Option<String>,
    api_url: Option<String>,
    corp_id: Option<String>,
    message: Option<String>,
    message_type: Option<String>,
    agent_id: Option<String>,
    to_user: Option<String>,
    to_party: Option<String>,
    to_tag: Option<String>,
    http_config: Option<HttpConfig>,
}

/// What one of these integrations sends, ready.
#[derive(Debug)]
pub(crate) struct ChatTarget {
    kind: Kind,
    client: reqwest::Client,
    url: String,
    secret: String,
    fields: Vec<(&'static str, FieldTemplate)>,
    extra: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Discord,
    Teams,
    Telegram,
    Webex,
    Opsgenie,
    VictorOps,
    Pushover,
    WeChat,
}

fn parse<T: serde::de::DeserializeOwned>(v: &serde_norway::Value) -> Result<T, String> {
    serde_norway::from_value(v.clone()).map_err(|e| e.to_string())
}

fn field(
    t: &Templates,
    name: &'static str,
    given: &Option<String>,
    default: &str,
) -> Result<(&'static str, FieldTemplate), String> {
    let text = given.clone().unwrap_or_else(|| self::t(default));
    Ok((
        name,
        t.field(name, &text).map_err(|e| format!("{name}: {e}"))?,
    ))
}

fn with_global(http: &Option<HttpConfig>, g: &GlobalConfig) -> Option<HttpConfig> {
    http.clone().or_else(|| g.http_config.clone())
}

fn slash(url: String) -> String {
    if url.ends_with('/') {
        url
    } else {
        url + "/"
    }
}

/// Builds one integration of `kind` from its configuration; returns whether it sends resolved
/// notifications, and the target.
pub(crate) fn build(
    kind: &str,
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    match kind {
        "discord" => build::build_discord(raw, g, t),
        "msteams" => build::build_msteams(raw, g, t),
        "telegram" => build::build_telegram(raw, g, t),
        "webex" => build::build_webex(raw, g, t),
        "opsgenie" => build::build_opsgenie(raw, g, t),
        "victorops" => build::build_victorops(raw, g, t),
        "pushover" => build::build_pushover(raw, g, t),
        "wechat" => build::build_wechat(raw, g, t),
        other => Err(format!("{other} is not a receiver kind medic delivers to")),
    }
}

/// A chat target with the integration's HTTP client (its settings over the global ones).
fn chat(
    g: &GlobalConfig,
    kind: Kind,
    http: &Option<HttpConfig>,
    url: String,
    secret: String,
    fields: Vec<(&'static str, FieldTemplate)>,
    extra: Json,
) -> Result<ChatTarget, String> {
    Ok(ChatTarget {
        kind,
        client: http_client(&with_global(http, g))?,
        url,
        secret,
        fields,
        extra,
    })
}

/// Refuses receiver kinds medic cannot deliver to, so `check config` fails instead of passing
/// with a warning (and a page that never arrives).
pub(crate) fn refuse_unsupported(name: &str, sns: usize) -> Result<(), String> {
    if sns > 0 {
        return Err(format!(
            "receiver {name:?}: sns_configs are not delivered by medic yet (Amazon SNS cannot be reached or tested here); route this receiver through a webhook_configs entry to a bridge, or use another receiver"
        ));
    }
    Ok(())
}

fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl ChatTarget {
    fn render(
        &self,
        v: &medic_template::Value,
    ) -> Result<std::collections::BTreeMap<&'static str, String>, NotifyError> {
        self.fields
            .iter()
            .map(|(name, f)| {
                f.render(v)
                    .map(|s| (*name, s))
                    .map_err(|e| NotifyError::permanent("template", e))
            })
            .collect()
    }

    /// Sends the message for `data`, as the service's API expects it.
    pub(crate) async fn send(
        &self,
        data: &Data,
        group_key: &str,
        now: i64,
    ) -> Result<(), NotifyError> {
        let v = data.to_value(now);
        let f = self.render(&v)?;
        let firing = data.status == "firing";
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        match self.kind {
            Kind::Discord => {
                let color = if firing { 0x992D22 } else { 0x2ECC71 };
                let body = json!({"embeds": [{
                    "title": truncate(get("title"), 256),
                    "description": truncate(get("message"), 4096),
                    "color": color,
                }]});
                crate::notify::send_json(&self.client, reqwest::Method::POST, &self.url, &[], &body)
                    .await
            }
            Kind::Teams => {
                let color = if firing { "8C1A1A" } else { "2DC72D" };
                let body = json!({
                    "@context": "http://schema.org/extensions",
                    "type": "MessageCard",
                    "title": get("title"),
                    "summary": get("summary"),
                    "text": get("text"),
                    "themeColor": color,
                });
                crate::notify::send_json(&self.client, reqwest::Method::POST, &self.url, &[], &body)
                    .await
            }
            Kind::Telegram => {
                let mut body = self.extra.clone();
                body["text"] = json!(truncate(get("message"), 4096));
                crate::notify::send_json(&self.client, reqwest::Method::POST, &self.url, &[], &body)
                    .await
            }
            Kind::Webex => {
                let mut body = self.extra.clone();
                body["markdown"] = json!(truncate(get("message"), 7439));
                crate::notify::send_json(&self.client, reqwest::Method::POST, &self.url, &[], &body)
                    .await
            }
            Kind::Opsgenie => self.opsgenie(&f, firing, group_key).await,
            Kind::VictorOps => {
                let message_type = if firing {
                    get("message_type")
                } else {
                    "RECOVERY".into()
                };
                let mut body = json!({
                    "message_type": message_type,
                    "entity_id": group_key_hash(group_key),
                    "entity_display_name": truncate(get("entity_display_name"), 512),
                    "state_message": truncate(get("state_message"), 20480),
                    "monitoring_tool": get("monitoring_tool"),
                });
                if let Some(m) = self.extra["custom_fields"].as_object() {
                    for (k, val) in m {
                        body[k] = val.clone();
                    }
                }
                crate::notify::send_json(&self.client, reqwest::Method::POST, &self.url, &[], &body)
                    .await
            }
            Kind::Pushover => {
                let e = &self.extra;
                let mut form = vec![
                    ("token", self.secret.clone()),
                    ("user", e["user"].as_str().unwrap_or("").to_string()),
                    ("title", truncate(get("title"), 250)),
                    ("message", truncate(get("message"), 1024)),
                    ("url", truncate(get("url"), 512)),
                    ("url_title", get("url_title")),
                    ("priority", get("priority")),
                    ("retry", e["retry"].to_string()),
                    ("expire", e["expire"].to_string()),
                ];
                if e["html"] == true {
                    form.push(("html", "1".into()));
                }
                if e["ttl"].as_i64().unwrap_or(0) > 0 {
                    form.push(("ttl", e["ttl"].to_string()));
                }
                let sound = get("sound");
                if !sound.is_empty() {
                    form.push(("sound", sound));
                }
                crate::notify::send_form(&self.client, &self.url, &form).await
            }
            Kind::WeChat => self.wechat(&f).await,
        }
    }

    async fn opsgenie(
        &self,
        f: &std::collections::BTreeMap<&'static str, String>,
        firing: bool,
        group_key: &str,
    ) -> Result<(), NotifyError> {
        let alias = group_key_hash(group_key);
        let auth = [("Authorization", format!("GenieKey {}", self.secret))];
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        if !firing {
            let url = format!("{}v2/alerts/{alias}/close?identifierType=alias", self.url);
            let body = json!({ "source": get("source") });
            return crate::notify::send_json(
                &self.client,
                reqwest::Method::POST,
                &url,
                &auth,
                &body,
            )
            .await;
        }
        let split = |s: String| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        let mut body = json!({
            "alias": alias,
            "message": truncate(get("message"), 130),
            "description": truncate(get("description"), 15000),
            "details": self.extra["details"],
            "source": get("source"),
        });
        let responders = &self.extra["responders"];
        if responders.as_array().is_some_and(|r| !r.is_empty()) {
            body["responders"] = responders.clone();
        }
        for (k, v) in [
            ("tags", split(get("tags"))),
            ("actions", split(get("actions"))),
        ] {
            if !v.is_empty() {
                body[k] = json!(v);
            }
        }
        for k in ["note", "priority", "entity"] {
            let v = get(k);
            if !v.is_empty() {
                body[k] = json!(v);
            }
        }
        let url = format!("{}v2/alerts", self.url);
        crate::notify::send_json(&self.client, reqwest::Method::POST, &url, &auth, &body).await
    }

    async fn wechat(
        &self,
        f: &std::collections::BTreeMap<&'static str, String>,
    ) -> Result<(), NotifyError> {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let corp = self.extra["corp_id"].as_str().unwrap_or("");
        let mut token_url = reqwest::Url::parse(&format!("{}gettoken", self.url))
            .map_err(|e| NotifyError::permanent("config", format!("api_url: {e}")))?;
        token_url
            .query_pairs_mut()
            .append_pair("corpid", corp)
            .append_pair("corpsecret", &self.secret);
        let token: Json = crate::notify::get_json(&self.client, token_url.as_str()).await?;
        let access = token["access_token"].as_str().unwrap_or("");
        if access.is_empty() {
            return Err(NotifyError::permanent(
                "4xx",
                format!("WeChat gave no access token: errcode {}", token["errcode"]),
            ));
        }
        let kind = self.extra["message_type"].as_str().unwrap_or("text");
        let mut body = json!({
            "toparty": get("to_party"),
            "touser": get("to_user"),
            "totag": get("to_tag"),
            "agentid": get("agent_id"),
            "msgtype": kind,
            "safe": "0",
        });
        body[kind] = json!({ "content": truncate(get("message"), 2048) });
        let mut url = reqwest::Url::parse(&format!("{}message/send", self.url))
            .map_err(|e| NotifyError::permanent("config", format!("api_url: {e}")))?;
        url.query_pairs_mut().append_pair("access_token", access);
        crate::notify::send_json(
            &self.client,
            reqwest::Method::POST,
            url.as_str(),
            &[],
            &body,
        )
        .await
    }
}
