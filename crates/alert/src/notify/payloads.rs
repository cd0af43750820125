//! The Slack and PagerDuty messages, rendered from the integrations' templates in Alertmanager's shapes.

use super::*;

pub(super) fn slack_payload(
    f: &SlackFields,
    v: &medic_template::Value,
) -> Result<Json, NotifyError> {
    let mut att = serde_json::Map::new();
    let mut put = |k: &str, s: String, omit_empty: bool| {
        if !(omit_empty && s.is_empty()) {
            att.insert(k.to_string(), json!(s));
        }
    };
    put(
        "title",
        truncate_runes(render(&f.title, v)?, MAX_TITLE_RUNES),
        true,
    );
    put("title_link", render(&f.title_link, v)?, true);
    put("pretext", render(&f.pretext, v)?, true);
    put("text", render(&f.text, v)?, false);
    put("fallback", render(&f.fallback, v)?, false);
    put("callback_id", render(&f.callback_id, v)?, true);
    put("image_url", render(&f.image_url, v)?, true);
    put("thumb_url", render(&f.thumb_url, v)?, true);
    put("footer", render(&f.footer, v)?, true);
    put("color", render(&f.color, v)?, true);
    if !f.fields.is_empty() {
        let mut fields = Vec::new();
        for (t, val, short) in &f.fields {
            fields.push(json!({
                "title": render(t, v)?,
                "value": render(val, v)?,
                "short": short.unwrap_or(f.short_fields),
            }));
        }
        att.insert("fields".into(), Json::Array(fields));
    }
    if !f.actions.is_empty() {
        att.insert("actions".into(), Json::Array(f.actions.clone()));
    }
    if !f.mrkdwn_in.is_empty() {
        att.insert("mrkdwn_in".into(), json!(f.mrkdwn_in));
    }
    let mut req = serde_json::Map::new();
    for (k, t) in [
        ("channel", &f.channel),
        ("username", &f.username),
        ("icon_emoji", &f.icon_emoji),
        ("icon_url", &f.icon_url),
    ] {
        let s = render(t, v)?;
        if !s.is_empty() {
            req.insert(k.into(), json!(s));
        }
    }
    if f.link_names {
        req.insert("link_names".into(), json!(true));
    }
    req.insert("attachments".into(), json!([Json::Object(att)]));
    Ok(Json::Object(req))
}

pub(super) fn pagerduty_payload(
    f: &PagerdutyFields,
    v: &medic_template::Value,
    routing_key: &str,
    status: &str,
    group_key: &str,
) -> Result<Json, NotifyError> {
    let action = if status == "firing" {
        "trigger"
    } else {
        "resolve"
    };
    let client = render(&f.client, v)?;
    let mut details = serde_json::Map::new();
    for (k, t) in &f.details {
        details.insert(k.clone(), json!(render(t, v)?));
    }
    let source = match render(&f.source, v)? {
        s if s.is_empty() => client.clone(),
        s => s,
    };
    let mut payload = serde_json::Map::new();
    payload.insert(
        "summary".into(),
        json!(truncate_runes(render(&f.description, v)?, MAX_TITLE_RUNES)),
    );
    payload.insert("source".into(), json!(source));
    payload.insert("severity".into(), json!(render(&f.severity, v)?));
    payload.insert("custom_details".into(), Json::Object(details));
    for (k, t) in [
        ("class", &f.class),
        ("component", &f.component),
        ("group", &f.group),
    ] {
        let s = render(t, v)?;
        if !s.is_empty() {
            payload.insert(k.into(), json!(s));
        }
    }
    let mut images = Vec::new();
    for (src, alt, href) in &f.images {
        let src = render(src, v)?;
        if src.is_empty() {
            continue;
        }
        images.push(json!({"src": src, "alt": render(alt, v)?, "href": render(href, v)?}));
    }
    let mut links = Vec::new();
    for (href, text) in &f.links {
        let href = render(href, v)?;
        if href.is_empty() {
            continue;
        }
        links.push(json!({"href": href, "text": render(text, v)?}));
    }
    let mut msg = serde_json::Map::new();
    msg.insert("routing_key".into(), json!(routing_key));
    msg.insert("event_action".into(), json!(action));
    msg.insert("dedup_key".into(), json!(group_key_hash(group_key)));
    msg.insert("payload".into(), Json::Object(payload));
    msg.insert("client".into(), json!(client));
    msg.insert("client_url".into(), json!(render(&f.client_url, v)?));
    if !images.is_empty() {
        msg.insert("images".into(), Json::Array(images));
    }
    if !links.is_empty() {
        msg.insert("links".into(), Json::Array(links));
    }
    Ok(Json::Object(msg))
}
