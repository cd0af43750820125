//! Alertmanager's configuration file (`alertmanager.yml`), read unmodified: `global`, `route`,
//! `receivers`, `inhibit_rules`, `time_intervals` / `mute_time_intervals` and `templates`. The
//! structs follow Alertmanager 0.25 field by field, with its defaults. The receivers beyond
//! webhook, Slack, PagerDuty and e-mail are read by [`crate::receivers`]; Amazon SNS is refused
//! at load (medic does not deliver to it yet).

mod receivers;
mod validate;

pub use receivers::*;

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use serde::{de, Deserialize, Deserializer};

use medic_model::{MatchType, Matcher};

use crate::matchers::{parse_matchers, sort_matchers};
use crate::timeinterval::TimeInterval;
use crate::Error;

pub use medic_model::Dur;

/// Matchers written as strings (`matchers: ['a="b"', 'c=~d']`), parsed when read.
#[derive(Debug, Clone, Default)]
pub struct MatcherList(pub Vec<Matcher>);

impl<'de> Deserialize<'de> for MatcherList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for l in &lines {
            out.extend(parse_matchers(l).map_err(de::Error::custom)?);
        }
        Ok(MatcherList(out))
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Deprecated in Alertmanager in favour of `time_intervals`; both are read.
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    /// Template files (globs, relative to the config file) whose `define`s messages can use.
    #[serde(default)]
    pub templates: Vec<String>,
}

/// `global:` — defaults for receivers and the resolve timeout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How long an alert without an end time stays firing after it was last received.
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: Dur,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    pub smtp_from: Option<String>,
    #[serde(default = "default_smtp_hello")]
    pub smtp_hello: String,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<String>,
    pub smtp_auth_identity: Option<String>,
    #[serde(default = "yes")]
    pub smtp_require_tls: bool,
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<String>,
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    pub opsgenie_api_url: Option<String>,
    pub opsgenie_api_key: Option<String>,
    pub opsgenie_api_key_file: Option<String>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<String>,
    pub wechat_api_corp_id: Option<String>,
    pub victorops_api_url: Option<String>,
    pub victorops_api_key: Option<String>,
    pub victorops_api_key_file: Option<String>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        medic_model::yaml::from_str("{}").expect("defaults parse")
    }
}

fn default_resolve_timeout() -> Dur {
    Dur(5 * 60_000)
}
fn default_smtp_hello() -> String {
    "localhost".into()
}
fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn yes() -> bool {
    true
}

/// prometheus/common's HTTP client settings, as far as medic's receivers use them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub proxy_url: Option<String>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    /// Accepted so files load; using it is reported as unsupported.
    pub oauth2: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

/// A node of the routing tree, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub receiver: Option<String>,
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub matchers: MatcherList,
    /// Legacy equality matchers.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Legacy regex matchers.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    pub group_wait: Option<Dur>,
    pub group_interval: Option<Dur>,
    pub repeat_interval: Option<Dur>,
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

impl RouteConfig {
    /// All matchers of the node (legacy ones converted), sorted as Alertmanager sorts them.
    pub fn all_matchers(&self) -> Result<Vec<Matcher>, String> {
        let mut ms = self.matchers.0.clone();
        for (k, v) in &self.match_eq {
            ms.push(Matcher::equal(k.clone(), v.clone()));
        }
        // Alertmanager keeps a `match_re` value in its anchored form (`^(?:…)$`), and that is
        // the form its group keys show; the same here, so group keys (and the dedup keys of
        // PagerDuty and Opsgenie, made from them) do not change on a migration.
        for (k, v) in &self.match_re {
            ms.push(
                Matcher::new(MatchType::Regexp, k.clone(), format!("^(?:{v})$"))
                    .map_err(|e| e.to_string())?,
            );
        }
        sort_matchers(&mut ms);
        Ok(ms)
    }
}

/// `inhibit_rules[]`: mute target alerts while a source alert fires, if they agree on `equal`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub source_matchers: MatcherList,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub target_matchers: MatcherList,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// `time_intervals[]` / `mute_time_intervals[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

/// `receivers[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    #[serde(default)]
    pub opsgenie_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub victorops_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub pushover_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub sns_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub telegram_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub wechat_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub webex_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub discord_configs: Vec<serde_norway::Value>,
    #[serde(default)]
    pub msteams_configs: Vec<serde_norway::Value>,
}

impl ReceiverConfig {
    /// The integrations built by [`crate::receivers`], by kind.
    pub fn chat_configs(&self) -> [(&'static str, &Vec<serde_norway::Value>); 8] {
        [
            ("discord", &self.discord_configs),
            ("msteams", &self.msteams_configs),
            ("telegram", &self.telegram_configs),
            ("webex", &self.webex_configs),
            ("opsgenie", &self.opsgenie_configs),
            ("victorops", &self.victorops_configs),
            ("pushover", &self.pushover_configs),
            ("wechat", &self.wechat_configs),
        ]
    }
}

impl Config {
    /// Reads and validates a file. Errors name the file, the field and the reason.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let err = |message: String| Error::Config {
            file: path.to_path_buf(),
            message,
        };
        let mut cfg: Config = medic_model::yaml::from_str(text).map_err(err)?;
        cfg.apply_global_defaults();
        cfg.validate().map_err(err)?;
        Ok(cfg)
    }

    /// Copies `global` settings into the receivers that leave them out, as Alertmanager does.
    fn apply_global_defaults(&mut self) {
        let g = self.global.clone();
        for r in &mut self.receivers {
            for w in &mut r.webhook_configs {
                if w.http_config.is_none() {
                    w.http_config = g.http_config.clone();
                }
            }
            for s in &mut r.slack_configs {
                if s.http_config.is_none() {
                    s.http_config = g.http_config.clone();
                }
                if s.api_url.is_none() && s.api_url_file.is_none() {
                    s.api_url = g.slack_api_url.clone();
                    s.api_url_file = g.slack_api_url_file.clone();
                }
            }
            for p in &mut r.pagerduty_configs {
                if p.http_config.is_none() {
                    p.http_config = g.http_config.clone();
                }
                if p.url.is_none() {
                    p.url = Some(g.pagerduty_url.clone());
                }
            }
            for e in &mut r.email_configs {
                macro_rules! inherit {
                    ($field:ident, $global:ident) => {
                        if e.$field.is_none() {
                            e.$field = g.$global.clone();
                        }
                    };
                }
                inherit!(from, smtp_from);
                inherit!(smarthost, smtp_smarthost);
                inherit!(auth_username, smtp_auth_username);
                inherit!(auth_password, smtp_auth_password);
                inherit!(auth_password_file, smtp_auth_password_file);
                inherit!(auth_secret, smtp_auth_secret);
                inherit!(auth_identity, smtp_auth_identity);
                if e.hello.is_none() {
                    e.hello = Some(g.smtp_hello.clone());
                }
                if e.require_tls.is_none() {
                    e.require_tls = Some(g.smtp_require_tls);
                }
            }
        }
    }

    /// The template files named by `templates:`, resolved against `base` (the config's
    /// directory) and expanded.
    pub fn template_files(&self, base: &Path) -> Result<Vec<PathBuf>, String> {
        let mut out = Vec::new();
        for pat in &self.templates {
            let full = if Path::new(pat).is_absolute() {
                PathBuf::from(pat)
            } else {
                base.join(pat)
            };
            let paths = glob::glob(&full.to_string_lossy())
                .map_err(|e| format!("templates: invalid pattern {pat:?}: {e}"))?;
            for p in paths {
                out.push(p.map_err(|e| format!("templates: {e}"))?);
            }
        }
        Ok(out)
    }

    /// All named time intervals (`time_intervals` and the deprecated `mute_time_intervals`).
    pub fn named_intervals(&self) -> impl Iterator<Item = &NamedTimeInterval> {
        self.mute_time_intervals.iter().chain(&self.time_intervals)
    }
}

/// Replaces secrets in a config text with `<secret>`, for showing the config over the API.
pub fn redact(text: &str) -> String {
    const SECRET_KEYS: &[&str] = &[
        "password",
        "auth_password",
        "auth_secret",
        "smtp_auth_password",
        "smtp_auth_secret",
        "credentials",
        "bearer_token",
        "routing_key",
        "service_key",
        "api_url",
        "slack_api_url",
        "api_key",
        "opsgenie_api_key",
        "victorops_api_key",
        "wechat_api_secret",
        "api_secret",
        "token",
        "bot_token",
        "user_key",
        "webhook_url",
        "url",
        "client_secret",
        // medic.yml: the key of the logs' hash redaction.
        "hash_key",
    ];
    fn walk(v: &mut serde_norway::Value, under_webhook: bool) {
        match v {
            serde_norway::Value::Mapping(m) => {
                for (k, val) in m.iter_mut() {
                    let key = k.as_str().unwrap_or("");
                    let secret = SECRET_KEYS.contains(&key) && (key != "url" || under_webhook);
                    if key == "headers" {
                        // E-mail and HTTP headers may carry credentials: keep the names only.
                        if let serde_norway::Value::Mapping(h) = val {
                            for (_, hv) in h.iter_mut() {
                                *hv = serde_norway::Value::String("<secret>".into());
                            }
                        }
                    } else if key == "proxy_url" && val.is_string() {
                        let shown = webhook_url_shown(val.as_str().unwrap_or(""), false);
                        *val = serde_norway::Value::String(shown);
                    } else if key == "url" && under_webhook && val.is_string() {
                        // Webhook URLs are secrets (Alertmanager shows `<secret>` since 0.26:
                        // services put keys in their paths), but amtool 0.25 parses the
                        // configuration it is shown: a URL with only its host left.
                        let shown = webhook_url_shown(val.as_str().unwrap_or(""), true);
                        *val = serde_norway::Value::String(shown);
                    } else if key == "url" && val.is_string() {
                        // Other URLs (a database's, a remote write destination's) keep their
                        // shape, with the password and query values masked.
                        let shown = webhook_url_shown(val.as_str().unwrap_or(""), false);
                        *val = serde_norway::Value::String(shown);
                    } else if secret && val.is_string() {
                        *val = serde_norway::Value::String("<secret>".into());
                    } else {
                        walk(val, key == "webhook_configs");
                    }
                }
            }
            serde_norway::Value::Sequence(s) => {
                for x in s {
                    walk(x, under_webhook);
                }
            }
            _ => {}
        }
    }
    if medic_model::yaml::check_depth(text).is_err() {
        return String::new();
    }
    /// A URL with its password and query values masked (and its path, with `mask_path`),
    /// still a URL.
    fn webhook_url_shown(u: &str, mask_path: bool) -> String {
        let Ok(mut p) = reqwest::Url::parse(u) else {
            return "<secret>".into();
        };
        if mask_path && p.path() != "/" && !p.path().is_empty() {
            p.set_path("/secret");
        }
        if p.password().is_some() {
            let _ = p.set_password(Some("secret"));
        }
        if p.query().is_some() {
            let pairs: Vec<(String, String)> = p
                .query_pairs()
                .map(|(k, _)| (k.into_owned(), "secret".to_string()))
                .collect();
            p.query_pairs_mut().clear().extend_pairs(pairs);
        }
        p.set_fragment(None);
        p.to_string()
    }
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(mut v) => {
            walk(&mut v, false);
            serde_norway::to_string(&v).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, Path::new("am.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_typical_alertmanager_file() {
        let c = parse(
            r#"
global:
  resolve_timeout: 1m
  slack_api_url: https://hooks.slack.example/x
route:
  receiver: default
  group_by: [alertname, cluster]
  routes:
    - matchers: ['severity="critical"', team=~"db|infra"]
      receiver: pager
      continue: true
    - match: {team: web}
      match_re: {service: "api.*"}
      receiver: slack
      group_by: ['...']
receivers:
  - name: default
    webhook_configs: [{url: "http://127.0.0.1:9/hook"}]
  - name: pager
    pagerduty_configs: [{routing_key: abc}]
  - name: slack
    slack_configs: [{channel: '#ops'}]
  - name: ops
    opsgenie_configs: [{api_key: x}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname]
"#,
        )
        .unwrap();
        assert_eq!(c.global.resolve_timeout, Dur(60_000));
        assert_eq!(
            c.receivers[2].slack_configs[0].api_url.as_deref(),
            Some("https://hooks.slack.example/x")
        );
        assert_eq!(
            c.receivers[1].pagerduty_configs[0].url.as_deref(),
            Some("https://events.pagerduty.com/v2/enqueue")
        );
        let r = c.route.as_ref().unwrap();
        assert_eq!(r.routes[0].all_matchers().unwrap().len(), 2);
        assert_eq!(r.routes[1].all_matchers().unwrap()[0].name, "service");
        let ops = c.receivers.iter().find(|r| r.name == "ops").unwrap();
        assert_eq!(ops.chat_configs()[4], ("opsgenie", &ops.opsgenie_configs));
        assert_eq!(ops.opsgenie_configs.len(), 1);
    }

    #[test]
    fn errors_say_where_and_why() {
        let base = "route: {receiver: a}\nreceivers: [{name: a}]\n";
        assert!(parse(base).is_ok());
        for (text, want) in [
            ("route: {receiver: b}\nreceivers: [{name: a}]\n", "undefined receiver \"b\""),
            ("receivers: [{name: a}]\n", "no route provided"),
            ("route: {receiver: a, group_wait: 3x}\nreceivers: [{name: a}]\n", "route.group_wait"),
            ("route: {receiver: a, routes: [{matchers: ['a=\"b']}]}\nreceivers: [{name: a}]\n", "unescaped double quote"),
            ("route: {receiver: a, group_by: ['...', x]}\nreceivers: [{name: a}]\n", "wildcard"),
            ("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n", "not unique"),
            ("route: {receiver: a, routes: [{mute_time_intervals: [night]}]}\nreceivers: [{name: a}]\n", "undefined time interval \"night\""),
            ("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'ftp://x'}]}]\n", "unsupported scheme"),
            ("route: {receiver: a}\nreceivers: [{name: a, webhok_configs: []}]\n", "unknown field `webhok_configs`"),
            ("route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: x@y}]}]\n", "no global SMTP from"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}\n→ {e}");
            assert!(e.contains("am.yml"), "{e}");
        }
    }

    #[test]
    fn urls_outside_webhooks_keep_their_shape_without_passwords() {
        let r = redact("state:\n  postgresql:\n    url: postgres://medic:pg-pw@db:5432/medic\nremote_write:\n- url: https://u:rw-pw@vm/api/v1/write?token=t0k\n");
        assert!(
            !r.contains("pg-pw") && !r.contains("rw-pw") && !r.contains("t0k"),
            "{r}"
        );
        assert!(
            r.contains("db:5432/medic") && r.contains("vm/api/v1/write"),
            "{r}"
        );
    }

    #[test]
    fn redaction_hides_secrets_and_keeps_structure() {
        let r = redact("global:\n  smtp_auth_password: hunter2\nreceivers:\n- name: a\n  webhook_configs:\n  - url: http://user:pw@x/\n  pagerduty_configs:\n  - routing_key: k\n");
        assert!(
            !r.contains("hunter2") && !r.contains("pw@") && !r.contains(": k"),
            "{r}"
        );
        assert!(r.contains("name: a"), "{r}");
        // Webhook URLs stay URLs (amtool parses them), with path and query masked.
        let r = redact("receivers:\n- name: a\n  webhook_configs:\n  - url: https://hooks.example/T0/key?token=abc123&y=2\n");
        assert!(
            r.contains("url: https://hooks.example/secret?token=secret&y=secret"),
            "{r}"
        );
        // Proxy passwords and e-mail headers (which may carry tokens) are masked too.
        let r = redact("global:\n  http_config: {proxy_url: 'http://u:proxypw@proxy:3128'}\nreceivers:\n- name: a\n  email_configs:\n  - to: x@y\n    headers: {X-Api-Key: hdr-secret}\n");
        assert!(!r.contains("proxypw") && !r.contains("hdr-secret"), "{r}");
        assert!(r.contains("X-Api-Key"), "{r}");
        // medic.yml's log redaction key.
        let r = redact("logs:\n  redaction:\n    hash_key: s3cret-hmac\n");
        assert!(!r.contains("s3cret-hmac") && r.contains("hash_key"), "{r}");
    }
}
