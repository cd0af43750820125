//! The receiver integrations' settings (webhook, Slack, e-mail, PagerDuty) with Alertmanager's
//! defaults.

use super::*;

/// `webhook_configs[]`: the Alertmanager webhook payload, POSTed as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    pub url: Option<String>,
    pub url_file: Option<String>,
    /// At most this many alerts per message (0: all); the rest are counted in
    /// `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: u64,
}

/// `slack_configs[]`: an incoming-webhook message with one attachment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default)]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub api_url_file: Option<String>,
    #[serde(default)]
    pub channel: String,
    #[serde(default = "slack_username")]
    pub username: String,
    #[serde(default = "slack_color")]
    pub color: String,
    #[serde(default = "slack_title")]
    pub title: String,
    #[serde(default = "slack_title_link")]
    pub title_link: String,
    #[serde(default = "slack_pretext")]
    pub pretext: String,
    #[serde(default = "slack_text")]
    pub text: String,
    #[serde(default)]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "slack_footer")]
    pub footer: String,
    #[serde(default = "slack_fallback")]
    pub fallback: String,
    #[serde(default = "slack_callback_id")]
    pub callback_id: String,
    #[serde(default = "slack_icon_emoji")]
    pub icon_emoji: String,
    #[serde(default = "slack_icon_url")]
    pub icon_url: String,
    #[serde(default)]
    pub image_url: String,
    #[serde(default)]
    pub thumb_url: String,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default = "slack_mrkdwn_in")]
    pub mrkdwn_in: Vec<String>,
    #[serde(default)]
    pub actions: Vec<SlackAction>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub style: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    pub confirm: Option<serde_norway::Value>,
}

fn slack_username() -> String {
    r#"{{ template "slack.default.username" . }}"#.into()
}
fn slack_color() -> String {
    r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into()
}
fn slack_title() -> String {
    r#"{{ template "slack.default.title" . }}"#.into()
}
fn slack_title_link() -> String {
    r#"{{ template "slack.default.titlelink" . }}"#.into()
}
fn slack_pretext() -> String {
    r#"{{ template "slack.default.pretext" . }}"#.into()
}
fn slack_text() -> String {
    r#"{{ template "slack.default.text" . }}"#.into()
}
fn slack_footer() -> String {
    r#"{{ template "slack.default.footer" . }}"#.into()
}
fn slack_fallback() -> String {
    r#"{{ template "slack.default.fallback" . }}"#.into()
}
fn slack_callback_id() -> String {
    r#"{{ template "slack.default.callbackid" . }}"#.into()
}
fn slack_icon_emoji() -> String {
    r#"{{ template "slack.default.iconemoji" . }}"#.into()
}
fn slack_icon_url() -> String {
    r#"{{ template "slack.default.iconurl" . }}"#.into()
}
fn slack_mrkdwn_in() -> Vec<String> {
    vec!["fallback".into(), "pretext".into(), "text".into()]
}

/// `email_configs[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub send_resolved: bool,
    pub to: String,
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<String>,
    pub auth_identity: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "email_html")]
    pub html: String,
    #[serde(default = "email_text")]
    pub text: String,
    pub require_tls: Option<bool>,
    #[serde(default)]
    pub tls_config: TlsConfig,
}

fn email_html() -> String {
    r#"{{ template "email.default.html" . }}"#.into()
}
fn email_text() -> String {
    r#"{{ template "email.default.text" . }}"#.into()
}

/// `pagerduty_configs[]` (Events API v2 with `routing_key`, v1 with `service_key`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    pub service_key: Option<String>,
    pub service_key_file: Option<String>,
    pub routing_key: Option<String>,
    pub routing_key_file: Option<String>,
    pub url: Option<String>,
    #[serde(default = "pd_client")]
    pub client: String,
    #[serde(default = "pd_client_url")]
    pub client_url: String,
    #[serde(default = "pd_description")]
    pub description: String,
    #[serde(default = "pd_details")]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<PagerdutyImage>,
    #[serde(default)]
    pub links: Vec<PagerdutyLink>,
    #[serde(default)]
    pub source: String,
    #[serde(default = "pd_severity")]
    pub severity: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub component: String,
    #[serde(default)]
    pub group: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub href: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub text: String,
}

fn pd_client() -> String {
    r#"{{ template "pagerduty.default.client" . }}"#.into()
}
fn pd_client_url() -> String {
    r#"{{ template "pagerduty.default.clientURL" . }}"#.into()
}
fn pd_description() -> String {
    r#"{{ template "pagerduty.default.description" .}}"#.into()
}
fn pd_severity() -> String {
    "error".into()
}
fn pd_details() -> BTreeMap<String, String> {
    [
        (
            "firing",
            r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
        ),
        (
            "resolved",
            r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
        ),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
