//! The e-mail receiver: the message rendered from Alertmanager's templates and sent over SMTP (lettre).

use super::*;

pub(super) async fn send_email(
    e: &EmailTarget,
    v: &medic_template::Value,
) -> Result<(), NotifyError> {
    use lettre::message::header::{ContentType, HeaderName, HeaderValue};
    use lettre::message::{Mailbox, MultiPart, SinglePart};

    let bad = |m: String| NotifyError::permanent("config", m);
    let from: Mailbox = render(&e.from, v)?
        .parse()
        .map_err(|x| bad(format!("from: {x}")))?;
    let to_text = render(&e.to, v)?;
    let mut b = lettre::Message::builder().from(from);
    for addr in to_text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        b = b.to(addr
            .parse::<Mailbox>()
            .map_err(|x| bad(format!("to {addr:?}: {x}")))?);
    }
    let mut subject = String::new();
    for (k, t) in &e.headers {
        let val = render(t, v)?;
        if k.eq_ignore_ascii_case("subject") {
            subject = val;
        } else if !(k.eq_ignore_ascii_case("to") || k.eq_ignore_ascii_case("from")) {
            let name = HeaderName::new_from_ascii(k.clone())
                .map_err(|_| bad(format!("header name {k:?}")))?;
            b = b.raw_header(HeaderValue::new(name, val));
        }
    }
    let b = b.subject(subject).message_id(None).date_now();
    let text = render(&e.text, v)?;
    let html = render(&e.html, v)?;
    let body = match (text.is_empty(), html.is_empty()) {
        (false, false) => b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        ),
        (true, false) => b.header(ContentType::TEXT_HTML).body(html),
        _ => b.header(ContentType::TEXT_PLAIN).body(text),
    }
    .map_err(|x| bad(format!("building the message: {x}")))?;

    transmit(e, body).await
}

/// Sends `msg` over the target's SMTP session settings.
async fn transmit(e: &EmailTarget, msg: lettre::Message) -> Result<(), NotifyError> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let bad = |m: String| NotifyError::permanent("config", m);
    let tls = if e.port == 465 || e.require_tls {
        let params = TlsParameters::builder(e.host.clone())
            .dangerous_accept_invalid_certs(e.insecure_skip_verify)
            .build()
            .map_err(|x| bad(format!("TLS: {x}")))?;
        if e.port == 465 {
            Tls::Wrapper(params)
        } else {
            Tls::Required(params)
        }
    } else {
        Tls::None
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.as_str())
        .port(e.port)
        .hello_name(ClientId::Domain(e.hello.clone()))
        .tls(tls)
        .timeout(Some(REQUEST_TIMEOUT));
    if let Some((u, p)) = &e.auth {
        t = t.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let transport = t.build();
    transport.send(msg).await.map(|_| ()).map_err(|x| {
        let permanent = x.is_permanent();
        NotifyError {
            retryable: !permanent,
            message: format!(
                "SMTP {}:{}: {}",
                e.host,
                e.port,
                medic_model::error_chain(&x)
            ),
            reason: if permanent { "4xx" } else { "network" },
        }
    })
}

/// Sends a document (a report) as one e-mail: `subject`, a plain-text part and an HTML part.
/// `to` and `from` are rendered with no alert data (static addresses work; templates that
/// read alerts render empty).
pub(super) async fn send_email_document(
    e: &EmailTarget,
    subject: &str,
    text: &str,
    html: &str,
) -> Result<(), NotifyError> {
    use lettre::message::header::ContentType;
    use lettre::message::{Mailbox, MultiPart, SinglePart};

    let v = medic_template::Value::Nil;
    let bad = |m: String| NotifyError::permanent("config", m);
    let from: Mailbox = render(&e.from, &v)?
        .parse()
        .map_err(|x| bad(format!("from: {x}")))?;
    let mut b = lettre::Message::builder().from(from);
    for addr in render(&e.to, &v)?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        b = b.to(addr
            .parse::<Mailbox>()
            .map_err(|x| bad(format!("to {addr:?}: {x}")))?);
    }
    let msg = b
        .subject(subject)
        .message_id(None)
        .date_now()
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text.to_string()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.to_string()),
                ),
        )
        .map_err(|x| bad(format!("building the message: {x}")))?;
    transmit(e, msg).await
}

pub(super) fn email(e: &EmailConfig, index: usize, t: &Templates) -> Result<Integration, String> {
    let f = |name: &str, text: &str| t.field(name, text).map_err(|err| format!("{name}: {err}"));
    let smarthost = e.smarthost.clone().unwrap_or_default();
    let (host, port) = smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| format!("smarthost {smarthost:?} is not host:port"))?;
    let auth = match &e.auth_username {
        Some(u) if !u.is_empty() => Some((
            u.clone(),
            read_secret(&e.auth_password, &e.auth_password_file, "auth_password")
                .unwrap_or_default(),
        )),
        _ => None,
    };
    let mut headers = BTreeMap::new();
    headers.insert(
        "Subject".to_string(),
        r#"{{ template "email.default.subject" . }}"#.to_string(),
    );
    for (k, v) in &e.headers {
        // Header names are case-insensitive; the configured spelling wins.
        headers.retain(|h: &String, _| !h.eq_ignore_ascii_case(k));
        headers.insert(k.clone(), v.clone());
    }
    Ok(Integration {
        kind: "email",
        index,
        send_resolved: e.send_resolved,
        target: Target::Email(Box::new(EmailTarget {
            to: f("to", &e.to)?,
            from: f("from", e.from.as_deref().unwrap_or(""))?,
            host,
            port,
            hello: e.hello.clone().unwrap_or_else(|| "localhost".into()),
            auth,
            require_tls: e.require_tls.unwrap_or(true),
            insecure_skip_verify: e.tls_config.insecure_skip_verify,
            headers: headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), f(&format!("headers.{k}"), v)?)))
                .collect::<Result<_, String>>()?,
            html: f("html", &e.html)?,
            text: f("text", &e.text)?,
        })),
    })
}

#[derive(Debug)]
pub(super) struct EmailTarget {
    to: FieldTemplate,
    from: FieldTemplate,
    host: String,
    port: u16,
    hello: String,
    auth: Option<(String, String)>,
    require_tls: bool,
    insecure_skip_verify: bool,
    headers: Vec<(String, FieldTemplate)>,
    html: FieldTemplate,
    text: FieldTemplate,
}
