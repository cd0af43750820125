//! Checking a raw playbook into a [`Playbook`]: every field validated, errors naming the field.

use super::*;

pub(super) type CheckResult<T> = Result<T, (String, String)>;

fn fail(field: &str, msg: String) -> (String, String) {
    (field.to_string(), msg)
}

thread_local! {
    /// The directory of the playbook being checked: `{file: …}` secrets are relative to it.
    static PLAYBOOK_DIR: std::cell::RefCell<PathBuf> = std::cell::RefCell::new(PathBuf::new());
}

/// An `env` or header value: a template, or a secret from a file or the environment (taken
/// as it is, never expanded). Errors name the field and the file or variable, never a value.
fn value_text(field: &str, v: &RawValue) -> Result<Text, String> {
    match v {
        RawValue::Text(s) => Text::parse(field, s),
        RawValue::Secret(RawSecret {
            file: Some(f),
            env: None,
        }) => {
            let path = PLAYBOOK_DIR.with(|d| d.borrow().join(f));
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{field}.file: cannot read {}: {e}", path.display()))?;
            Ok(Text::Plain(text.trim().to_string()))
        }
        RawValue::Secret(RawSecret {
            file: None,
            env: Some(name),
        }) => std::env::var(name)
            .map(Text::Plain)
            .map_err(|_| format!("{field}.env: the environment variable {name} is not set")),
        RawValue::Secret(_) => Err(format!(
            "{field}: give exactly one of `file` (a path) or `env` (a variable name)"
        )),
    }
}

pub(super) fn check(path: &Path, raw: RawPlaybook) -> CheckResult<Playbook> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    PLAYBOOK_DIR.with(|d| *d.borrow_mut() = dir);
    if !is_name(&raw.name) {
        return Err(fail(
            "name",
            format!(
                "{:?} is not a valid name (letters, digits, '_', '-', '.')",
                raw.name
            ),
        ));
    }
    let sources = check_sources(raw.trigger.sources.as_deref())?;
    let trigger = check_trigger(raw.trigger)?;
    let target = Text::parse(
        "target",
        // Without a target, the trigger's whole label set is the target.
        raw.target
            .as_deref()
            .unwrap_or("{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"),
    )
    .map_err(|e| fail("target", e))?;
    let group = raw
        .group
        .as_deref()
        .map(|g| Text::parse("group", g))
        .transpose()
        .map_err(|e| fail("group", e))?;
    let params = check_params(&raw.params)?;
    let (collect, names) = check_collectors(raw.collect)?;
    let actions = check_actions(raw.actions)?;
    let diagnose = check_causes(raw.diagnose, &names, &actions)?;
    let verify = check_verify(raw.verify)?;
    let notify = check_notify(raw.notify);
    let guards = check_guards(raw.guards)?;
    Ok(Playbook {
        name: raw.name,
        description: raw.description,
        file: path.to_path_buf(),
        enabled: raw.enabled,
        dry_run: raw.dry_run,
        trigger,
        sources,
        target,
        group,
        params,
        collect,
        diagnose,
        actions,
        verify,
        on_unknown_outcome: raw.on_unknown_outcome,
        notify,
        guards,
    })
}

fn check_sources(raw: Option<&[String]>) -> CheckResult<Vec<TriggerSource>> {
    let Some(raw) = raw else {
        return Ok(vec![TriggerSource::Rules, TriggerSource::Anomaly]);
    };
    raw.iter()
        .map(|s| match s.as_str() {
            "rules" => Ok(TriggerSource::Rules),
            "anomaly" => Ok(TriggerSource::Anomaly),
            "api" => Ok(TriggerSource::Api(None)),
            other => match other.strip_prefix("api:") {
                Some(id) if !id.is_empty() => Ok(TriggerSource::Api(Some(id.to_string()))),
                _ => Err(fail(
                    "trigger.sources",
                    format!("unknown source {other:?}: rules, anomaly, api or api:<identity>"),
                )),
            },
        })
        .collect()
}

fn check_trigger(t: RawTrigger) -> CheckResult<Trigger> {
    Ok(match (t.alert, t.condition) {
        (Some(sel), None) => Trigger::Alert(
            medic_model::parse_selector(&sel).map_err(|e| fail("alert", e.to_string()))?,
        ),
        (None, Some(c)) => {
            check_promql_text("query", &c.query)?;
            Trigger::Condition {
                query: c.query,
                for_: c.for_.0,
            }
        }
        (None, None) => {
            return Err(fail(
                "trigger",
                "needs `alert` (a selector over alert labels) or `condition`".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                "trigger",
                "has both `alert` and `condition`; write two playbooks".into(),
            ))
        }
    })
}

fn check_params(raw: &BTreeMap<String, RawParam>) -> CheckResult<Vec<Param>> {
    let mut params = Vec::new();
    for (k, v) in raw {
        if !is_identifier(k) {
            return Err(fail(
                k,
                "parameter names are identifiers ([A-Za-z_][A-Za-z0-9_]*)".into(),
            ));
        }
        let (value, pattern) = match v {
            RawParam::Text(t) => (t, None),
            RawParam::Checked(c) => {
                let re = regex::Regex::new(&format!("^(?:{})$", c.pattern)).map_err(|e| {
                    fail(
                        k,
                        format!("params.{k}.pattern: invalid regular expression: {e}"),
                    )
                })?;
                (&c.value, Some(re))
            }
        };
        params.push(Param {
            name: k.clone(),
            value: Text::parse(&format!("params.{k}"), value).map_err(|e| fail(k, e))?,
            pattern,
        });
    }
    Ok(params)
}

/// The collectors, and their names (the variables diagnosis expressions may read).
fn check_collectors(raw: Vec<RawCollector>) -> CheckResult<(Vec<Collector>, HashSet<String>)> {
    let mut collect = Vec::new();
    let mut names = HashSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let field = format!("collect[{i}]");
        if !is_identifier(&c.name) || RESERVED.contains(&c.name.as_str()) {
            return Err(fail(
                &c.name,
                format!(
                    "{field}.name: {:?} must be an identifier and not one of {RESERVED:?} (diagnosis expressions refer to it by name)",
                    c.name
                ),
            ));
        }
        if !names.insert(c.name.clone()) {
            return Err(fail(
                &c.name,
                format!("{field}.name: {:?} is collected twice", c.name),
            ));
        }
        let kinds = c.query.is_some() as u8
            + c.exec.is_some() as u8
            + c.http.is_some() as u8
            + c.logs.is_some() as u8;
        if kinds != 1 {
            return Err(fail(
                &c.name,
                format!("{field}: needs exactly one of `query`, `exec`, `http`, `logs`"),
            ));
        }
        if c.limit.is_some() && c.logs.is_none() {
            return Err(fail(
                &c.name,
                format!("{field}.limit: only a `logs` collector takes a limit"),
            ));
        }
        let kind = if let Some(q) = c.logs {
            logs_collector(&field, &c.name, &q, c.range, c.limit)?
        } else if let Some(q) = c.query {
            check_promql_text(&c.name, &q)?;
            let query = Text::promql(&field, &q).map_err(|e| fail(&c.name, e))?;
            match c.range {
                Some(r) if r.0 > 0 => {
                    let step = c.step.map(|s| s.0).unwrap_or((r.0 / 60).max(1000));
                    if step <= 0 || r.0 / step > 11_000 {
                        return Err(fail(
                            &c.name,
                            format!("{field}.step: too small for the range (at most 11000 points)"),
                        ));
                    }
                    CollectKind::Range {
                        query,
                        range: r.0,
                        step,
                    }
                }
                Some(_) => return Err(fail(&c.name, format!("{field}.range: must be positive"))),
                None => CollectKind::Query(query),
            }
        } else if let Some(e) = c.exec {
            CollectKind::Exec(exec_spec(&field, e)?)
        } else if let Some(h) = c.http {
            CollectKind::Http(http_spec(&field, h)?)
        } else {
            unreachable!("one kind checked above")
        };
        collect.push(Collector { name: c.name, kind });
    }

    Ok((collect, names))
}

/// A `logs:` collector: LogQL (checked now unless it is a template), a positive range, a
/// limit of 1..=1000 lines.
fn logs_collector(
    field: &str,
    name: &str,
    q: &str,
    range: Option<Dur>,
    limit: Option<usize>,
) -> CheckResult<CollectKind> {
    let fail = |msg: String| (name.to_string(), format!("{field}: {msg}"));
    check_promql_text(name, q)?;
    // LogQL strings escape like PromQL's, `|~` included.
    let query = Text::promql(field, q).map_err(|e| (name.to_string(), e))?;
    if !query.is_template() {
        match medic_logs::logql::parse(q) {
            Ok(medic_logs::logql::ast::Expr::Log(_)) => {}
            Ok(_) => {
                return Err(fail(
                    "logs: a log query is needed ({…} with filters), not a metric query".into(),
                ))
            }
            Err(e) => return Err(fail(format!("logs: {e}"))),
        }
    }
    let range = range.map_or(15 * 60 * 1000, |r| r.0);
    if range <= 0 {
        return Err(fail("range: must be positive".into()));
    }
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(fail(format!("limit: {limit} is outside 1..=1000")));
    }
    Ok(CollectKind::Logs {
        query,
        range,
        limit,
    })
}

fn check_actions(raw: BTreeMap<String, RawAction>) -> CheckResult<BTreeMap<String, Action>> {
    let mut actions = BTreeMap::new();
    for (name, a) in raw {
        if !is_name(&name) {
            return Err(fail(
                &name,
                format!("actions.{name}: not a valid action name"),
            ));
        }
        let act = action(&format!("actions.{name}"), &name, a)?;
        actions.insert(name, act);
    }
    if actions.is_empty() {
        return Err(fail("actions", "at least one action is needed".into()));
    }
    Ok(actions)
}

fn check_causes(
    raw: Vec<RawCause>,
    names: &HashSet<String>,
    actions: &BTreeMap<String, Action>,
) -> CheckResult<Vec<Cause>> {
    let known_vars: HashSet<&str> = names
        .iter()
        .map(String::as_str)
        .chain(RESERVED.iter().copied())
        .collect();
    let mut diagnose = Vec::new();
    let mut causes = HashSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let field = format!("diagnose[{i}]");
        if !is_name(&c.cause) || !causes.insert(c.cause.clone()) {
            return Err(fail(
                &c.cause,
                format!(
                    "{field}.cause: {:?} is not a valid, unique cause name",
                    c.cause
                ),
            ));
        }
        let when =
            Expr::compile(&c.when).map_err(|e| fail(&c.when, format!("{field}.when: {e}")))?;
        for v in when.variables() {
            if !known_vars.contains(v.as_str()) {
                return Err(fail(&c.when, format!(
                    "{field}.when: refers to {v:?}, which is neither collected nor one of {RESERVED:?}"
                )));
            }
        }
        if c.actions.is_empty() {
            return Err(fail(
                &c.cause,
                format!("{field}.actions: at least one action is needed"),
            ));
        }
        for a in &c.actions {
            if !actions.contains_key(a) {
                return Err(fail(
                    a,
                    format!("{field}.actions: no action named {a:?} under `actions`"),
                ));
            }
        }
        diagnose.push(Cause {
            name: c.cause,
            description: c.description,
            when: Arc::new(when),
            actions: c.actions,
        });
    }
    if diagnose.is_empty() {
        // Without rules, the cause is the trigger itself and every action is a candidate in
        // the order written.
        diagnose.push(Cause {
            name: "triggered".into(),
            description: "no diagnosis rules: the trigger is the cause".into(),
            when: Arc::new(Expr::compile("true").expect("constant")),
            actions: actions.keys().cloned().collect(),
        });
    }

    Ok(diagnose)
}

fn check_verify(v: RawVerify) -> CheckResult<Verify> {
    let kinds = v.query.is_some() as u8
        + v.alert_resolved as u8
        + v.exec.is_some() as u8
        + v.http.is_some() as u8;
    if kinds != 1 {
        return Err(fail(
            "verify",
            "needs exactly one of `query`, `alert_resolved: true`, `exec`, `http`".into(),
        ));
    }
    let check = if let Some(q) = v.query {
        check_promql_text("verify", &q)?;
        VerifyCheck::Query(Text::promql("verify.query", &q).map_err(|e| fail("verify", e))?)
    } else if v.alert_resolved {
        VerifyCheck::AlertResolved
    } else if let Some(e) = v.exec {
        VerifyCheck::Exec(exec_spec("verify.exec", e)?)
    } else if let Some(h) = v.http {
        VerifyCheck::Http(http_spec("verify.http", h)?)
    } else {
        unreachable!("one kind checked above")
    };
    if v.within.0 <= 0 {
        return Err(fail("within", "verify.within: must be positive".into()));
    }
    Ok(Verify {
        check,
        within: v.within.0,
        interval: v.interval.map(|d| d.0).unwrap_or(5_000).max(100),
        after: v.after.map(|d| d.0).unwrap_or(0).max(0),
    })
}

fn check_notify(n: RawNotify) -> Notify {
    let on = n.on.map(|v| v.into_iter().collect()).unwrap_or_else(|| {
        [
            NotifyOn::Success,
            NotifyOn::Failure,
            NotifyOn::Approval,
            NotifyOn::DryRun,
        ]
        .into_iter()
        .collect()
    });
    Notify {
        receivers: n.receivers,
        escalate: n.escalate,
        on,
    }
}

fn check_guards(g: RawGuards) -> CheckResult<Guards> {
    let blast_radius = match g.blast_radius {
        None => None,
        Some(RawBlast { max: Some(n), max_percent: None, group_size: None }) if n > 0 => Some(BlastRadius::Count(n)),
        Some(RawBlast { max: None, max_percent: Some(p), group_size: Some(q) }) if p > 0.0 && p <= 100.0 => {
            check_promql_text("group_size", &q)?;
            Some(BlastRadius::Percent {
                percent: p,
                group_size: Text::promql("guards.blast_radius.group_size", &q).map_err(|e| fail("group_size", e))?,
            })
        }
        Some(_) => {
            return Err(fail(
                "blast_radius",
                "guards.blast_radius: either `max: N` (N > 0) or `max_percent: P` (0 < P ≤ 100) with `group_size: <PromQL>`".into(),
            ))
        }
    };
    if let Some(r) = g.rate_limit {
        if r.max == 0 || r.per.0 <= 0 {
            return Err(fail(
                "rate_limit",
                "guards.rate_limit: `max` and `per` must be positive".into(),
            ));
        }
    }
    if let Some(c) = g.circuit_breaker {
        if c.failures == 0 || c.within.0 <= 0 {
            return Err(fail(
                "circuit_breaker",
                "guards.circuit_breaker: `failures` and `within` must be positive".into(),
            ));
        }
    }
    Ok(Guards {
        cooldown: g.cooldown.map(|d| d.0).unwrap_or(0),
        rate_limit: g.rate_limit,
        blast_radius,
        circuit_breaker: g.circuit_breaker,
        approval_timeout: g.approval_timeout.map(|d| d.0),
    })
}

/// Queries are PromQL; heal does not depend on the evaluator, so here only emptiness is
/// checked. The server parses every query without templates at load
/// ([`Playbook::queries`]); templated ones can only be parsed once expanded.
pub(super) fn check_promql_text(field: &str, q: &str) -> CheckResult<()> {
    if q.trim().is_empty() {
        return Err((field.to_string(), "query is empty".into()));
    }
    Ok(())
}

pub(super) fn action(field: &str, name: &str, a: RawAction) -> CheckResult<Action> {
    let fail = |msg: String| (name.to_string(), format!("{field}: {msg}"));
    let kinds = a.exec.is_some() as u8
        + a.http.is_some() as u8
        + a.wait.is_some() as u8
        + a.notify.is_some() as u8
        + a.steps.is_some() as u8;
    if kinds != 1 {
        return Err(fail(
            "needs exactly one of `exec`, `http`, `wait`, `notify`, `steps`".into(),
        ));
    }
    let kind = if let Some(steps) = a.steps {
        if steps.is_empty() {
            return Err(fail("steps: at least one step".into()));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, s) in steps.into_iter().enumerate() {
            let at = format!("{field}.steps[{i}]");
            if !is_name(&s.name) || !seen.insert(s.name.clone()) {
                return Err(fail(format!(
                    "steps[{i}].name: {:?} must be a unique name ([A-Za-z0-9_.-])",
                    s.name
                )));
            }
            let raw = RawAction {
                description: s.description,
                exec: s.exec,
                http: s.http,
                wait: s.wait,
                notify: s.notify,
                steps: None,
                rollback: s.rollback,
                approval: Approval::default(),
            };
            out.push(action(&at, &s.name, raw)?);
        }
        ActionKind::Steps(out)
    } else if let Some(e) = a.exec {
        ActionKind::Exec(exec_spec(field, e)?)
    } else if let Some(h) = a.http {
        ActionKind::Http(http_spec(field, h)?)
    } else if let Some(w) = a.wait {
        ActionKind::Wait(w.0.max(0))
    } else if let Some(n) = a.notify {
        if n.receivers.is_empty() {
            return Err(fail("notify.receivers: at least one receiver".into()));
        }
        ActionKind::Notify {
            receivers: n.receivers,
            message: Text::parse(&format!("{field}.notify.message"), &n.message).map_err(fail)?,
        }
    } else {
        unreachable!("one kind checked above")
    };
    let rollback = match a.rollback {
        Some(r) => {
            if r.rollback.is_some() || r.steps.is_some() {
                return Err(fail(
                    "rollback: a rollback is one action, without its own rollback or steps".into(),
                ));
            }
            Some(Box::new(action(&format!("{field}.rollback"), name, *r)?))
        }
        None => None,
    };
    Ok(Action {
        name: name.to_string(),
        description: a.description,
        kind,
        rollback,
        approval: a.approval,
    })
}

pub(super) fn exec_spec(field: &str, e: RawExec) -> CheckResult<ExecSpec> {
    let fail = |msg: String| (field.to_string(), format!("{field}.exec: {msg}"));
    if e.command.is_empty() || e.command[0].trim().is_empty() {
        return Err(fail(
            "`command` needs at least the program (argv[0])".into(),
        ));
    }
    if e.command[0].contains("{{") {
        return Err(fail(
            "the program (argv[0]) cannot be a template; alert data may only be arguments".into(),
        ));
    }
    let mut command = Vec::new();
    for (i, a) in e.command.iter().enumerate() {
        command.push(Text::parse(&format!("{field}.command[{i}]"), a).map_err(fail)?);
    }
    let mut env = Vec::new();
    for (k, v) in &e.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(fail(format!("env: {k:?} is not a valid variable name")));
        }
        env.push((
            k.clone(),
            value_text(&format!("{field}.env.{k}"), v).map_err(fail)?,
        ));
    }
    let dir = e
        .dir
        .as_deref()
        .map(|d| Text::parse(&format!("{field}.dir"), d))
        .transpose()
        .map_err(fail)?;
    let expect_output = e
        .expect_output
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|err| fail(format!("expect_output: {err}")))?;
    Ok(ExecSpec {
        expect_output,
        command,
        env,
        dir,
        timeout: e
            .timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_EXEC_TIMEOUT)
            .max(1),
    })
}

pub(super) fn http_spec(field: &str, h: RawHttp) -> CheckResult<HttpSpec> {
    let fail = |msg: String| (field.to_string(), format!("{field}.http: {msg}"));
    let method = h
        .method
        .as_deref()
        .unwrap_or(if h.body.is_some() { "POST" } else { "GET" });
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| fail(format!("method: {method:?} is not an HTTP method")))?;
    if !h.url.contains("{{") && reqwest::Url::parse(&h.url).is_err() {
        return Err(fail(format!("url: {:?} is not a valid URL", h.url)));
    }
    let mut headers = Vec::new();
    for (k, v) in &h.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(fail(format!("headers: {k:?} is not a valid header name")));
        }
        headers.push((
            k.clone(),
            value_text(&format!("{field}.headers.{k}"), v).map_err(fail)?,
        ));
    }
    for s in &h.expect_status {
        if !(100..=599).contains(s) {
            return Err(fail(format!("expect_status: {s} is not an HTTP status")));
        }
    }
    // A body that is JSON (by its Content-Type, or by how it starts) gets its values escaped as
    // JSON strings, so a label cannot add fields.
    let json_body = h.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type")
            && matches!(v, RawValue::Text(t) if t.to_ascii_lowercase().contains("json"))
    }) || h
        .body
        .as_deref()
        .is_some_and(|b| b.trim_start().starts_with(['{', '[']));
    let body_lang = if json_body { Lang::Json } else { Lang::Text };
    let mut hosts = Vec::new();
    for (i, h) in h.hosts.iter().enumerate() {
        hosts.push(
            regex::Regex::new(&format!("^(?:{h})$"))
                .map_err(|e| fail(format!("hosts[{i}]: invalid regular expression: {e}")))?,
        );
    }
    Ok(HttpSpec {
        method,
        url: Text::parse(&format!("{field}.url"), &h.url).map_err(fail)?,
        headers,
        body: h
            .body
            .as_deref()
            .map(|b| Text::parse_as(&format!("{field}.body"), b, body_lang))
            .transpose()
            .map_err(fail)?,
        expect_status: h.expect_status,
        hosts,
        timeout: h
            .timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_HTTP_TIMEOUT)
            .max(1),
    })
}
