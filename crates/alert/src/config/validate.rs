//! Checks of a read alertmanager.yml, with Alertmanager's own messages where it has them.

use std::collections::HashSet;

use medic_model::{MatchType, Matcher};

use super::*;

impl Config {
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            if r.name.is_empty() {
                return Err(format!("receivers[{i}]: missing name"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(format!(
                    "receivers[{i}]: notification config name {:?} is not unique",
                    r.name
                ));
            }
            check_receiver(i, r)?;
        }
        let intervals = self.check_intervals()?;
        self.check_inhibit_rules()?;
        let Some(root) = &self.route else {
            return Err("no route provided in config".into());
        };
        if root.receiver.as_deref().unwrap_or("").is_empty() {
            return Err("route: root route must specify a default receiver".into());
        }
        if !root.matchers.0.is_empty() || !root.match_eq.is_empty() || !root.match_re.is_empty() {
            return Err("route: root route must not have any matchers".into());
        }
        if !root.mute_time_intervals.is_empty() {
            return Err("route: root route must not have any mute time intervals".into());
        }
        if !root.active_time_intervals.is_empty() {
            return Err("route: root route must not have any active time intervals".into());
        }
        check_route(root, "route", &names, &intervals)
    }

    fn check_intervals(&self) -> Result<HashSet<&str>, String> {
        let mut intervals = HashSet::new();
        for (i, t) in self
            .mute_time_intervals
            .iter()
            .chain(&self.time_intervals)
            .enumerate()
        {
            if t.name.is_empty() {
                return Err(format!("time_intervals[{i}]: missing name"));
            }
            if !intervals.insert(t.name.as_str()) {
                return Err(format!("time interval {:?} is not unique", t.name));
            }
        }
        Ok(intervals)
    }

    fn check_inhibit_rules(&self) -> Result<(), String> {
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            for l in &r.equal {
                if !medic_model::is_valid_label_name(l) {
                    return Err(format!(
                        "inhibit_rules[{i}].equal: invalid label name {l:?}"
                    ));
                }
            }
            for (k, v) in r.source_match_re.iter().chain(&r.target_match_re) {
                Matcher::new(MatchType::Regexp, k.clone(), v.clone())
                    .map_err(|e| format!("inhibit_rules[{i}]: {e}"))?;
            }
        }
        Ok(())
    }
}

fn check_receiver(i: usize, r: &ReceiverConfig) -> Result<(), String> {
    for (j, w) in r.webhook_configs.iter().enumerate() {
        let at = format!("receivers[{i}] ({}).webhook_configs[{j}]", r.name);
        match (&w.url, &w.url_file) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at}: at most one of url & url_file must be configured"
                ))
            }
            (None, None) => return Err(format!("{at}: one of url or url_file must be configured")),
            (Some(u), None) => check_url(u).map_err(|e| format!("{at}.url: {e}"))?,
            _ => {}
        }
        check_http(&w.http_config).map_err(|e| format!("{at}.http_config: {e}"))?;
    }
    for (j, s) in r.slack_configs.iter().enumerate() {
        let at = format!("receivers[{i}] ({}).slack_configs[{j}]", r.name);
        match (&s.api_url, &s.api_url_file) {
            (None, None) => {
                return Err(format!(
                    "{at}: no global Slack API URL set either inline or in a file"
                ))
            }
            (Some(u), _) => check_url(u).map_err(|e| format!("{at}.api_url: {e}"))?,
            _ => {}
        }
        check_http(&s.http_config).map_err(|e| format!("{at}.http_config: {e}"))?;
    }
    for (j, p) in r.pagerduty_configs.iter().enumerate() {
        let at = format!("receivers[{i}] ({}).pagerduty_configs[{j}]", r.name);
        let keys = [
            &p.routing_key,
            &p.routing_key_file,
            &p.service_key,
            &p.service_key_file,
        ];
        match keys.iter().filter(|k| k.is_some()).count() {
            0 => return Err(format!("{at}: missing service or routing key in PagerDuty config")),
            1 => {}
            _ => return Err(format!("{at}: at most one of routing_key, routing_key_file, service_key and service_key_file must be configured")),
        }
        if let Some(u) = &p.url {
            check_url(u).map_err(|e| format!("{at}.url: {e}"))?;
        }
        check_http(&p.http_config).map_err(|e| format!("{at}.http_config: {e}"))?;
    }
    for (j, e) in r.email_configs.iter().enumerate() {
        let at = format!("receivers[{i}] ({}).email_configs[{j}]", r.name);
        if e.to.is_empty() {
            return Err(format!("{at}: missing to address in email config"));
        }
        if e.from.as_deref().unwrap_or("").is_empty() {
            return Err(format!("{at}: no global SMTP from set"));
        }
        match e.smarthost.as_deref() {
            None | Some("") => return Err(format!("{at}: no global SMTP smarthost set")),
            Some(h) => {
                if h.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(format!("{at}.smarthost: {h:?} is not host:port"));
                }
            }
        }
        for k in e.headers.keys() {
            if e.headers
                .keys()
                .filter(|o| o.eq_ignore_ascii_case(k))
                .count()
                > 1
            {
                return Err(format!("{at}: duplicate header {k:?}"));
            }
        }
    }
    Ok(())
}

fn check_url(u: &str) -> Result<(), String> {
    // The value is not quoted: URLs carry keys (a webhook's path, a password).
    let parsed = reqwest::Url::parse(u).map_err(|e| format!("invalid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(format!("unsupported scheme {:?} for URL", parsed.scheme()));
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err("URL has no host".to_string());
    }
    Ok(())
}

fn check_http(h: &Option<HttpConfig>) -> Result<(), String> {
    let Some(h) = h else { return Ok(()) };
    if h.oauth2.is_some() {
        return Err("oauth2 is not supported by medic yet".into());
    }
    if h.tls_config.cert_file.is_some() || h.tls_config.key_file.is_some() {
        return Err(
            "client certificates (tls_config.cert_file/key_file) are not supported by medic yet"
                .into(),
        );
    }
    let auths = [
        h.basic_auth.is_some(),
        h.authorization.is_some(),
        h.bearer_token.is_some() || h.bearer_token_file.is_some(),
    ];
    if auths.iter().filter(|x| **x).count() > 1 {
        return Err("at most one of basic_auth, authorization and bearer_token & bearer_token_file must be configured".into());
    }
    if let Some(p) = &h.proxy_url {
        check_url(p).map_err(|e| format!("proxy_url: {e}"))?;
    }
    Ok(())
}

fn check_route(
    r: &RouteConfig,
    at: &str,
    receivers: &HashSet<&str>,
    intervals: &HashSet<&str>,
) -> Result<(), String> {
    if let Some(recv) = &r.receiver {
        if !receivers.contains(recv.as_str()) {
            return Err(format!("{at}: undefined receiver {recv:?} used in route"));
        }
    }
    if let Some(gb) = &r.group_by {
        let mut seen = HashSet::new();
        for l in gb {
            if l == "..." {
                if gb.len() > 1 {
                    return Err(format!(
                        "{at}.group_by: cannot have wildcard group_by (`...`) and other labels at the same time"
                    ));
                }
            } else if !medic_model::is_valid_label_name(l) {
                return Err(format!(
                    "{at}.group_by: invalid label name {l:?} in group_by list"
                ));
            }
            if !seen.insert(l) {
                return Err(format!("{at}.group_by: duplicated label {l:?} in group_by"));
            }
        }
    }
    if r.group_interval == Some(Dur(0)) {
        return Err(format!(
            "{at}.group_interval: group_interval cannot be zero"
        ));
    }
    if r.repeat_interval == Some(Dur(0)) {
        return Err(format!(
            "{at}.repeat_interval: repeat_interval cannot be zero"
        ));
    }
    for l in r.match_eq.keys().chain(r.match_re.keys()) {
        if !medic_model::is_valid_label_name(l) {
            return Err(format!("{at}: invalid label name {l:?} in match"));
        }
    }
    r.all_matchers()
        .map_err(|e| format!("{at}.match_re: {e}"))?;
    for t in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        if !intervals.contains(t.as_str()) {
            return Err(format!("{at}: undefined time interval {t:?} used in route"));
        }
    }
    for (i, c) in r.routes.iter().enumerate() {
        check_route(c, &format!("{at}.routes[{i}]"), receivers, intervals)?;
    }
    Ok(())
}
