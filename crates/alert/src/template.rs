//! Message templates: Alertmanager's data model (`.Status`, `.Alerts.Firing`, `.CommonLabels`,
//! …) as template values, and medic's default templates under Alertmanager's names
//! (`slack.default.title`, `email.default.html`, …) so configurations that refer to them work.
//! The defaults carry each alert's labels, value (for medic's own rules), summary, runbook link
//! and a link back to medic.

use std::path::Path;

use medic_template::{Funcs, Template, Value};

use crate::types::{Alert, Annotations};
use medic_model::Labels;

/// medic's default templates.
pub const DEFAULTS: &str = r#"
{{ define "__alertmanager" }}medic{{ end }}
{{ define "__alertmanagerURL" }}{{ .ExternalURL }}/api/v2/alerts/groups?receiver={{ .Receiver | urlquery }}{{ end }}

{{ define "__subject" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }}
{{- if gt (len .CommonLabels) (len .GroupLabels) }} ({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " }}{{ end }}){{ end }}
{{- end }}

{{ define "__description" }}{{ end }}

{{ define "__medic_alert" -}}
{{ .Labels.alertname }}{{ if .Value }} = {{ .Value }}{{ end }}{{ with .Annotations.summary }}: {{ . }}{{ end }}
{{ with .Annotations.description }}  {{ . }}
{{ end }}  Labels: {{ range $i, $p := .Labels.SortedPairs }}{{ if $i }}, {{ end }}{{ $p.Name }}={{ $p.Value }}{{ end }}
  Since: {{ .StartsAt }}{{ if eq .Status "resolved" }}, resolved {{ .EndsAt }}{{ end }}
{{ with .Annotations.runbook_url }}  Runbook: {{ . }}
{{ end }}{{ with .GeneratorURL }}  Source: {{ . }}
{{ end }}{{ end }}

{{ define "__text_alert_list" }}{{ range . }}{{ template "__medic_alert" . }}{{ end }}{{ end }}

{{ define "__medic_body" -}}
{{ if gt (len .Alerts.Firing) 0 }}Firing ({{ len .Alerts.Firing }}):
{{ template "__text_alert_list" .Alerts.Firing }}{{ end -}}
{{ if gt (len .Alerts.Resolved) 0 }}Resolved ({{ len .Alerts.Resolved }}):
{{ template "__text_alert_list" .Alerts.Resolved }}{{ end -}}
View in medic: {{ template "__alertmanagerURL" . }}
{{ end }}

{{ define "discord.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "discord.default.message" }}{{ template "__medic_body" . }}{{ end }}
{{ define "msteams.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "msteams.default.summary" }}{{ template "__subject" . }}{{ end }}
{{ define "msteams.default.text" }}{{ template "__medic_body" . }}{{ end }}
{{ define "telegram.default.message" }}{{ template "__subject" . }}
{{ template "__medic_body" . }}{{ end }}
{{ define "webex.default.message" }}{{ template "__subject" . }}
{{ template "__medic_body" . }}{{ end }}
{{ define "opsgenie.default.message" }}{{ template "__subject" . }}{{ end }}
{{ define "opsgenie.default.description" }}{{ template "__medic_body" . }}{{ end }}
{{ define "opsgenie.default.source" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "victorops.default.message_type" }}CRITICAL{{ end }}
{{ define "victorops.default.entity_display_name" }}{{ template "__subject" . }}{{ end }}
{{ define "victorops.default.state_message" }}{{ template "__medic_body" . }}{{ end }}
{{ define "victorops.default.monitoring_tool" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "pushover.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "pushover.default.message" }}{{ template "__medic_body" . }}{{ end }}
{{ define "pushover.default.url" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "wechat.default.message" }}{{ template "__subject" . }}
{{ template "__medic_body" . }}{{ end }}
{{ define "wechat.default.to_user" }}@all{{ end }}
{{ define "wechat.default.to_party" }}{{ end }}
{{ define "wechat.default.to_tag" }}{{ end }}
{{ define "wechat.default.agent_id" }}{{ end }}

{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "slack.default.fallback" }}{{ template "slack.default.title" . }} | {{ template "slack.default.titlelink" . }}{{ end }}
{{ define "slack.default.callbackid" }}{{ end }}
{{ define "slack.default.pretext" }}{{ end }}
{{ define "slack.default.titlelink" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "slack.default.iconemoji" }}{{ end }}
{{ define "slack.default.iconurl" }}{{ end }}
{{ define "slack.default.text" }}{{ template "__medic_body" . }}{{ end }}
{{ define "slack.default.footer" }}{{ end }}

{{ define "pagerduty.default.description" }}{{ template "__subject" . }}{{ end }}
{{ define "pagerduty.default.client" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "pagerduty.default.clientURL" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "pagerduty.default.instances" }}{{ template "__text_alert_list" . }}{{ end }}

{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}
{{ define "email.default.text" }}{{ template "__subject" . }}

{{ template "__medic_body" . }}{{ end }}
{{ define "__html_subject" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " | html }}
{{- if gt (len .CommonLabels) (len .GroupLabels) }} ({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " | html }}{{ end }}){{ end }}
{{- end }}
{{ define "email.default.html" -}}
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ template "__html_subject" . }}</title></head>
<body style="font-family: sans-serif; font-size: 14px;">
<h2 style="color: {{ if eq .Status "firing" }}#c0392b{{ else }}#27ae60{{ end }};">{{ template "__html_subject" . }}</h2>
{{ range .Alerts -}}
<div style="border-left: 4px solid {{ if eq .Status "firing" }}#c0392b{{ else }}#27ae60{{ end }}; padding: 4px 12px; margin: 12px 0;">
<b>{{ .Labels.alertname | html }}</b>{{ if .Value }} = {{ .Value }}{{ end }} ({{ .Status }}){{ with .Annotations.summary }}: {{ . | html }}{{ end }}<br>
{{ with .Annotations.description }}{{ . | html }}<br>{{ end -}}
{{ range .Labels.SortedPairs }}{{ .Name | html }}={{ .Value | html }} {{ end }}<br>
Since {{ .StartsAt }}{{ if eq .Status "resolved" }}, resolved {{ .EndsAt }}{{ end }}<br>
{{ with .Annotations.runbook_url }}<a href="{{ . | html }}">Runbook</a> {{ end }}{{ with .GeneratorURL }}<a href="{{ . | html }}">Source</a>{{ end }}
</div>
{{ end -}}
<p><a href="{{ template "__alertmanagerURL" . }}">View in medic</a></p>
</body></html>
{{ end }}
"#;

/// The default templates plus the user's `templates:` files, parsed once per configuration.
#[derive(Clone)]
pub struct Templates {
    base: Template,
    funcs: std::sync::Arc<Funcs>,
}

impl Templates {
    /// Parses the defaults and then each file (later definitions override earlier ones).
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut base = Template::parse("default.tmpl", DEFAULTS).map_err(|e| e.to_string())?;
        for f in files {
            let f = f.as_ref();
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("template file {}: {e}", f.display()))?;
            base.add_definitions(&f.display().to_string(), &text)
                .map_err(|e| format!("template file {}: {e}", f.display()))?;
        }
        let funcs = Funcs::alertmanager();
        base.check_functions(&funcs).map_err(|e| e.to_string())?;
        Ok(Templates {
            base,
            funcs: std::sync::Arc::new(funcs),
        })
    }

    /// Parses a message field (`title`, `text`, …) against these templates.
    pub fn field(&self, name: &str, text: &str) -> Result<FieldTemplate, String> {
        if !text.contains("{{") {
            return Ok(FieldTemplate::Plain(text.to_string()));
        }
        let t = self
            .base
            .parse_with(name, text)
            .map_err(|e| e.to_string())?;
        t.check_functions(&self.funcs).map_err(|e| e.to_string())?;
        Ok(FieldTemplate::Template(t, self.funcs.clone()))
    }
}

/// A parsed message field.
#[derive(Clone)]
pub enum FieldTemplate {
    Plain(String),
    Template(Template, std::sync::Arc<Funcs>),
}

impl std::fmt::Debug for FieldTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldTemplate::Plain(s) => write!(f, "Plain({s:?})"),
            FieldTemplate::Template(..) => f.write_str("Template(..)"),
        }
    }
}

impl FieldTemplate {
    /// Renders the field for a message.
    pub fn render(&self, data: &Value) -> Result<String, String> {
        match self {
            FieldTemplate::Plain(s) => Ok(s.clone()),
            FieldTemplate::Template(t, funcs) => {
                t.execute(data, funcs, &[]).map_err(|e| e.to_string())
            }
        }
    }
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name in messages.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The message data of one notification: Alertmanager's `template.Data`.
#[derive(Debug, Clone)]
pub struct Data {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<Alert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Annotations,
    pub external_url: String,
}

impl Data {
    /// Builds the data for alerts of a group (firing ones have `ends_at == 0` or in the future).
    pub fn new(
        receiver: &str,
        group_labels: &Labels,
        alerts: Vec<Alert>,
        now: i64,
        external_url: &str,
    ) -> Data {
        let status = if alerts.iter().any(|a| !a.resolved_at(now)) {
            "firing"
        } else {
            "resolved"
        };
        let common_labels = match alerts.first() {
            None => Labels::empty(),
            Some(first) => {
                let mut b = medic_model::LabelsBuilder::new();
                for l in first.labels.iter() {
                    if alerts
                        .iter()
                        .all(|a| a.labels.get(&l.name) == Some(&*l.value))
                    {
                        b.set(l.name.clone(), l.value.clone());
                    }
                }
                b.build()
            }
        };
        let common_annotations = match alerts.first() {
            None => Annotations::new(),
            Some(first) => first
                .annotations
                .iter()
                .filter(|(k, v)| alerts.iter().all(|a| a.annotations.get(*k) == Some(*v)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Data {
            receiver: quote_meta(receiver),
            status,
            alerts,
            group_labels: group_labels.clone(),
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
        }
    }

    /// The data as a template value.
    pub fn to_value(&self, now: i64) -> Value {
        let labels = |l: &Labels| Value::str_map(l.iter().map(|l| (&*l.name, &*l.value)));
        let alerts = self
            .alerts
            .iter()
            .map(|a| {
                let mut m = vec![
                    ("Status", Value::from(a.status(now).as_str())),
                    ("Labels", labels(&a.labels)),
                    ("Annotations", Value::str_map(a.annotations.iter())),
                    ("StartsAt", Value::Str(go_time(a.starts_at))),
                    ("EndsAt", Value::Str(go_time(a.ends_at))),
                    ("GeneratorURL", Value::from(a.generator_url.as_str())),
                    ("Fingerprint", Value::Str(a.fingerprint().to_string())),
                ];
                if let Some(v) = a.value {
                    m.push(("Value", Value::Float(v)));
                }
                Value::map(m)
            })
            .collect();
        Value::map([
            ("Receiver", Value::from(self.receiver.as_str())),
            ("Status", Value::from(self.status)),
            ("Alerts", Value::List(alerts)),
            ("GroupLabels", labels(&self.group_labels)),
            ("CommonLabels", labels(&self.common_labels)),
            (
                "CommonAnnotations",
                Value::str_map(self.common_annotations.iter()),
            ),
            ("ExternalURL", Value::from(self.external_url.as_str())),
        ])
    }
}

/// A time as Go's `time.Time` prints in a template (`2024-05-01 12:00:00 +0000 UTC`); the
/// zero time for an unset end.
fn go_time(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    medic_template::funcs::go_time_string(ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)], ann: &[(&str, &str)], ends: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: 1_700_000_000_000,
            ends_at: ends,
            generator_url: "http://medic/graph".into(),
            updated_at: 0,
            timeout: false,
            value: Some(0.93),
            source: Default::default(),
        }
    }

    #[test]
    fn subject_and_body_carry_what_people_need() {
        let t = Templates::load(&[] as &[&Path]).unwrap();
        let alerts = vec![
            alert(
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "a"),
                    ("job", "node"),
                ],
                &[
                    ("summary", "disk almost full"),
                    ("runbook_url", "https://runbooks/disk"),
                ],
                0,
            ),
            alert(
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "b"),
                    ("job", "node"),
                ],
                &[("summary", "disk almost full")],
                1_700_000_100_000,
            ),
        ];
        let gl = Labels::from_pairs([("alertname", "DiskFull")]);
        let d = Data::new(
            "ops[team]",
            &gl,
            alerts,
            1_700_000_200_000,
            "http://medic:9090",
        );
        assert_eq!(d.receiver, r"ops\[team\]");
        let v = d.to_value(1_700_000_200_000);
        let subject = t
            .field("s", r#"{{ template "__subject" . }}"#)
            .unwrap()
            .render(&v)
            .unwrap();
        assert_eq!(subject, "[FIRING:1] DiskFull (node)");
        let body = t
            .field("b", r#"{{ template "slack.default.text" . }}"#)
            .unwrap()
            .render(&v)
            .unwrap();
        for want in [
            "Firing (1):",
            "DiskFull = 0.93: disk almost full",
            "instance=a",
            "Runbook: https://runbooks/disk",
            "Resolved (1):",
            "View in medic: http://medic:9090/api/v2/alerts/groups?receiver=ops%5C%5Bteam%5C%5D",
        ] {
            assert!(body.contains(want), "missing {want:?} in:\n{body}");
        }
        assert_eq!(
            t.field("x", "{{ .CommonAnnotations.summary }}")
                .unwrap()
                .render(&v)
                .unwrap(),
            "disk almost full"
        );
    }

    #[test]
    fn user_templates_override_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("my.tmpl");
        std::fs::write(
            &f,
            r#"{{ define "slack.default.title" }}custom {{ .Status }}{{ end }}"#,
        )
        .unwrap();
        let t = Templates::load(&[&f]).unwrap();
        let d = Data::new("r", &Labels::empty(), vec![], 0, "");
        assert_eq!(
            t.field("t", r#"{{ template "slack.default.title" . }}"#)
                .unwrap()
                .render(&d.to_value(0))
                .unwrap(),
            "custom resolved"
        );
        std::fs::write(&f, "{{ define \"x\" }}{{ nope }}{{ end }}").unwrap();
        let e = Templates::load(&[&f]).err().unwrap();
        assert!(e.contains("nope"), "{e}");
        assert!(t.field("f", "{{ .Status").is_err());
    }
}
