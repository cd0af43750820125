//! Each chat receiver's settings read and checked into a target: its URL, secret, templated fields and extra JSON.

use super::*;

pub(super) fn build_discord(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: DiscordConfig = parse(raw)?;
    let url = read_secret(&c.webhook_url, &c.webhook_url_file, "webhook_url")?;
    let fields = vec![
        field(t, "title", &c.title, "discord.default.title")?,
        field(t, "message", &c.message, "discord.default.message")?,
    ];
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::Discord,
            &c.http_config,
            url,
            String::new(),
            fields,
            Json::Null,
        )?,
    ))
}

pub(super) fn build_msteams(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: TeamsConfig = parse(raw)?;
    let url = read_secret(&c.webhook_url, &c.webhook_url_file, "webhook_url")?;
    let fields = vec![
        field(t, "title", &c.title, "msteams.default.title")?,
        field(t, "summary", &c.summary, "msteams.default.summary")?,
        field(t, "text", &c.text, "msteams.default.text")?,
    ];
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::Teams,
            &c.http_config,
            url,
            String::new(),
            fields,
            Json::Null,
        )?,
    ))
}

pub(super) fn build_telegram(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: TelegramConfig = parse(raw)?;
    let token = read_secret(&c.bot_token, &c.bot_token_file, "bot_token")?;
    let api = c
        .api_url
        .clone()
        .or_else(|| g.telegram_api_url.clone())
        .unwrap_or_else(|| "https://api.telegram.org".into());
    let fields = vec![field(t, "message", &c.message, "telegram.default.message")?];
    let extra = json!({
        "chat_id": c.chat_id,
        "parse_mode": c.parse_mode.clone().unwrap_or_else(|| "HTML".into()),
        "disable_notification": c.disable_notifications,
    });
    let url = format!("{}/bot{token}/sendMessage", api.trim_end_matches('/'));
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::Telegram,
            &c.http_config,
            url,
            String::new(),
            fields,
            extra,
        )?,
    ))
}

pub(super) fn build_webex(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: WebexConfig = parse(raw)?;
    let http = with_global(&c.http_config, g);
    if http
        .as_ref()
        .and_then(|h| h.authorization.as_ref())
        .is_none()
    {
        return Err("http_config.authorization is required (the bot's access token)".into());
    }
    let url = c
        .api_url
        .clone()
        .or_else(|| g.webex_api_url.clone())
        .unwrap_or_else(|| "https://webexapis.com/v1/messages".into());
    let fields = vec![field(t, "message", &c.message, "webex.default.message")?];
    let extra = json!({ "roomId": c.room_id });
    Ok((
        c.send_resolved,
        chat(g, Kind::Webex, &http, url, String::new(), fields, extra)?,
    ))
}

pub(super) fn build_opsgenie(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: OpsgenieConfig = parse(raw)?;
    let key = read_secret(&c.api_key, &c.api_key_file, "api_key")
        .or_else(|_| read_secret(&g.opsgenie_api_key, &g.opsgenie_api_key_file, "api_key"))?;
    let api = c
        .api_url
        .clone()
        .or_else(|| g.opsgenie_api_url.clone())
        .unwrap_or_else(|| "https://api.opsgenie.com/".into());
    let mut fields = vec![
        field(t, "message", &c.message, "opsgenie.default.message")?,
        field(
            t,
            "description",
            &c.description,
            "opsgenie.default.description",
        )?,
        field(t, "source", &c.source, "opsgenie.default.source")?,
    ];
    for (name, v) in [
        ("entity", &c.entity),
        ("actions", &c.actions),
        ("tags", &c.tags),
        ("note", &c.note),
        ("priority", &c.priority),
    ] {
        let text = v.clone().unwrap_or_default();
        fields.push((
            name,
            t.field(name, &text).map_err(|e| format!("{name}: {e}"))?,
        ));
    }
    let extra = json!({
        "details": c.details,
        "responders": c.responders,
        "update_alerts": c.update_alerts,
    });
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::Opsgenie,
            &c.http_config,
            slash(api),
            key,
            fields,
            extra,
        )?,
    ))
}

pub(super) fn build_victorops(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: VictorOpsConfig = parse(raw)?;
    let key = read_secret(&c.api_key, &c.api_key_file, "api_key")
        .or_else(|_| read_secret(&g.victorops_api_key, &g.victorops_api_key_file, "api_key"))?;
    let api = c
        .api_url
        .clone()
        .or_else(|| g.victorops_api_url.clone())
        .unwrap_or_else(|| {
            "https://alert.victorops.com/integrations/generic/20131114/alert/".into()
        });
    let fields = vec![
        field(
            t,
            "message_type",
            &c.message_type,
            "victorops.default.message_type",
        )?,
        field(
            t,
            "entity_display_name",
            &c.entity_display_name,
            "victorops.default.entity_display_name",
        )?,
        field(
            t,
            "state_message",
            &c.state_message,
            "victorops.default.state_message",
        )?,
        field(
            t,
            "monitoring_tool",
            &c.monitoring_tool,
            "victorops.default.monitoring_tool",
        )?,
    ];
    let url = format!("{}{key}/{}", slash(api), c.routing_key);
    let extra = json!({ "custom_fields": c.custom_fields });
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::VictorOps,
            &c.http_config,
            url,
            String::new(),
            fields,
            extra,
        )?,
    ))
}

pub(super) fn build_pushover(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: PushoverConfig = parse(raw)?;
    let user = read_secret(&c.user_key, &c.user_key_file, "user_key")?;
    let token = read_secret(&c.token, &c.token_file, "token")?;
    let fields = vec![
        field(t, "title", &c.title, "pushover.default.title")?,
        field(t, "message", &c.message, "pushover.default.message")?,
        field(t, "url", &c.url, "pushover.default.url")?,
        (
            "url_title",
            t.field("url_title", c.url_title.as_deref().unwrap_or(""))
                .map_err(|e| format!("url_title: {e}"))?,
        ),
        (
            "priority",
            t.field(
                "priority",
                c.priority
                    .as_deref()
                    .unwrap_or(r#"{{ if eq .Status "firing" }}2{{ else }}0{{ end }}"#),
            )
            .map_err(|e| format!("priority: {e}"))?,
        ),
        (
            "sound",
            t.field("sound", c.sound.as_deref().unwrap_or(""))
                .map_err(|e| format!("sound: {e}"))?,
        ),
    ];
    let secs = |d: Option<crate::config::Dur>, default: i64| d.map_or(default, |d| d.0 / 1000);
    let extra = json!({
        "user": user,
        "retry": secs(c.retry, 60),
        "expire": secs(c.expire, 3600),
        "ttl": secs(c.ttl, 0),
        "html": c.html,
    });
    let url = c
        .api_url
        .clone()
        .unwrap_or_else(|| "https://api.pushover.net/1/messages.json".into());
    Ok((
        c.send_resolved,
        chat(g, Kind::Pushover, &c.http_config, url, token, fields, extra)?,
    ))
}

pub(super) fn build_wechat(
    raw: &serde_norway::Value,
    g: &GlobalConfig,
    t: &Templates,
) -> Result<(bool, ChatTarget), String> {
    let c: WeChatConfig = parse(raw)?;
    let secret = c
        .api_secret
        .clone()
        .or_else(|| g.wechat_api_secret.clone())
        .ok_or("api_secret missing")?;
    let corp = c
        .corp_id
        .clone()
        .or_else(|| g.wechat_api_corp_id.clone())
        .ok_or("corp_id missing")?;
    let api = c
        .api_url
        .clone()
        .or_else(|| g.wechat_api_url.clone())
        .unwrap_or_else(|| "https://qyapi.weixin.qq.com/cgi-bin/".into());
    let fields = vec![
        field(t, "message", &c.message, "wechat.default.message")?,
        field(t, "to_user", &c.to_user, "wechat.default.to_user")?,
        field(t, "to_party", &c.to_party, "wechat.default.to_party")?,
        field(t, "to_tag", &c.to_tag, "wechat.default.to_tag")?,
        field(t, "agent_id", &c.agent_id, "wechat.default.agent_id")?,
    ];
    let extra = json!({
        "corp_id": corp,
        "message_type": c.message_type.clone().unwrap_or_else(|| "text".into()),
    });
    Ok((
        c.send_resolved,
        chat(
            g,
            Kind::WeChat,
            &c.http_config,
            slash(api),
            secret,
            fields,
            extra,
        )?,
    ))
}
