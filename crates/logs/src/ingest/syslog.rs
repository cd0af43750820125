//! Syslog messages: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`) and the BSD
//! format of RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`), and TCP framing (RFC 6587:
//! octet counting `LEN SP MSG`, or one message per line).
//!
//! A message becomes an entry of the stream `{job="syslog", host, app, facility, severity}`
//! (plus the configured labels); PROCID, MSGID and structured data become structured metadata.

use std::collections::BTreeMap;

use medic_model::Labels;

use crate::entry::{Entry, Stream};

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub ts: Option<i64>,
    pub facility: &'static str,
    pub severity: &'static str,
    pub host: String,
    pub app: String,
    pub metadata: Vec<(String, String)>,
    pub msg: String,
}

/// Parses one message; `now_ns` dates RFC 3164 timestamps (which lack a year and zone: the
/// current year, UTC) and messages without one.
pub fn parse(raw: &str, now_ns: i64) -> Result<Message, String> {
    let raw = raw.trim_end_matches(['\n', '\r', '\0']);
    let rest = raw
        .strip_prefix('<')
        .ok_or("a syslog message starts with <PRI>")?;
    let close = rest
        .find('>')
        .filter(|i| (1..=3).contains(i))
        .ok_or("the <PRI> of a syslog message is 1 to 3 digits")?;
    let pri: usize = rest[..close]
        .parse()
        .map_err(|_| "the <PRI> of a syslog message is a number".to_string())?;
    if pri > 191 {
        return Err(format!("PRI {pri} is above 191"));
    }
    let body = &rest[close + 1..];
    let mut m = if let Some(v5424) = body.strip_prefix("1 ") {
        rfc5424(v5424)?
    } else {
        rfc3164(body, now_ns)
    };
    m.facility = FACILITIES[pri / 8];
    m.severity = SEVERITIES[pri % 8];
    Ok(m)
}

fn nil(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_string()
    }
}

fn rfc5424(s: &str) -> Result<Message, String> {
    let mut parts = s.splitn(6, ' ');
    let mut next = |what: &str| {
        parts
            .next()
            .ok_or_else(|| format!("RFC 5424 message without {what}"))
    };
    let ts = next("a timestamp")?;
    let host = nil(next("a hostname")?);
    let app = nil(next("an app-name")?);
    let procid = nil(next("a procid")?);
    let msgid = nil(next("a msgid")?);
    let rest = parts.next().unwrap_or("");
    let (sd, msg) = structured_data(rest)?;
    let mut metadata = Vec::new();
    if !procid.is_empty() {
        metadata.push(("procid".into(), procid));
    }
    if !msgid.is_empty() {
        metadata.push(("msgid".into(), msgid));
    }
    metadata.extend(sd);
    let ts = medic_model::parse_rfc3339(ts).map(|ms| ms * 1_000_000);
    Ok(Message {
        ts,
        facility: "",
        severity: "",
        host,
        app,
        metadata,
        // A UTF-8 BOM may start the message. rsyslog's RFC 5424 template forwards a message it
        // read as BSD syslog with the space after `tag:` still in front: one space is dropped.
        msg: msg
            .trim_start_matches('\u{feff}')
            .strip_prefix(' ')
            .unwrap_or(msg.trim_start_matches('\u{feff}'))
            .to_string(),
    })
}

/// `[id k="v" …][…] MSG` or `- MSG`: the parameters as `id_k` metadata, and the message.
/// Structured-data parameters as metadata pairs.
type Params = Vec<(String, String)>;

fn structured_data(s: &str) -> Result<(Params, &str), String> {
    if let Some(m) = s.strip_prefix('-') {
        return Ok((Vec::new(), m.strip_prefix(' ').unwrap_or(m)));
    }
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let id_end = s[i..]
            .find([' ', ']'])
            .map(|x| x + i)
            .ok_or("unterminated structured data")?;
        let id = crate::logql::parsers::sanitize(&s[i + 1..id_end]);
        i = id_end;
        while i < b.len() && b[i] == b' ' {
            i += 1;
            let eq = s[i..]
                .find('=')
                .map(|x| x + i)
                .ok_or("structured data parameter without =")?;
            let name = crate::logql::parsers::sanitize(&s[i..eq]);
            if b.get(eq + 1) != Some(&b'"') {
                return Err("structured data value not quoted".into());
            }
            let mut j = eq + 2;
            let mut v = String::new();
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' && j + 1 < b.len() && matches!(b[j + 1], b'"' | b'\\' | b']') {
                    j += 1;
                }
                let ch = s[j..].chars().next().ok_or("bad structured data")?;
                v.push(ch);
                j += ch.len_utf8();
            }
            if j >= b.len() {
                return Err("unterminated structured data value".into());
            }
            out.push((format!("{id}_{name}"), v));
            i = j + 1;
        }
        if b.get(i) != Some(&b']') {
            return Err("structured data element not closed with ]".into());
        }
        i += 1;
    }
    let rest = &s[i..];
    Ok((out, rest.strip_prefix(' ').unwrap_or(rest)))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn rfc3164(s: &str, now_ns: i64) -> Message {
    let mut ts = None;
    let mut rest = s;
    // "Mmm dd hh:mm:ss " (day space-padded).
    if s.len() >= 16 && s.as_bytes()[15] == b' ' {
        if let Some(month) = MONTHS.iter().position(|m| s.starts_with(m)) {
            let day: Option<u32> = s[4..6].trim().parse().ok();
            let hms: Vec<Option<u32>> = s[7..15].split(':').map(|x| x.parse().ok()).collect();
            if let (Some(day), [Some(h), Some(mi), Some(se)]) = (day, hms.as_slice()) {
                let year = medic_model::format_rfc3339(now_ns / 1_000_000)[..4].to_string();
                let text = format!("{year}-{:02}-{day:02}T{h:02}:{mi:02}:{se:02}Z", month + 1);
                ts = medic_model::parse_rfc3339(&text).map(|ms| ms * 1_000_000);
                rest = &s[16..];
            }
        }
    } else if let Some((t, r)) = s.split_once(' ') {
        // Some senders put an RFC 3339 time in the BSD format.
        if let Some(ms) = medic_model::parse_rfc3339(t) {
            ts = Some(ms * 1_000_000);
            rest = r;
        }
    }
    let (host, rest) = match rest.split_once(' ') {
        Some((h, r)) if !h.ends_with(':') && !h.contains('[') => (h.to_string(), r),
        _ => (String::new(), rest),
    };
    // TAG[PID]: MSG
    let (app, procid, msg) = match rest.find(": ") {
        Some(colon) if rest[..colon].chars().all(|c| !c.is_whitespace()) => {
            let tag = &rest[..colon];
            let (app, pid) = match tag.split_once('[') {
                Some((a, p)) => (a.to_string(), p.trim_end_matches(']').to_string()),
                None => (tag.to_string(), String::new()),
            };
            (app, pid, &rest[colon + 2..])
        }
        _ => (String::new(), String::new(), rest),
    };
    let mut metadata = Vec::new();
    if !procid.is_empty() {
        metadata.push(("procid".into(), procid));
    }
    Message {
        ts,
        facility: "",
        severity: "",
        host,
        app,
        metadata,
        msg: msg.to_string(),
    }
}

/// The stream and entry of a message, with `extra` labels (from the config) under its own.
pub fn to_stream(m: Message, extra: &BTreeMap<String, String>, now_ns: i64) -> Stream {
    let mut labels = extra.clone();
    labels
        .entry("job".into())
        .or_insert_with(|| "syslog".into());
    for (k, v) in [
        ("host", m.host),
        ("app", m.app),
        ("facility", m.facility.to_string()),
        ("severity", m.severity.to_string()),
    ] {
        if !v.is_empty() {
            labels.insert(k.into(), v);
        }
    }
    Stream {
        labels: Labels::from_pairs(labels),
        entries: vec![Entry {
            ts: m.ts.unwrap_or(now_ns),
            line: m.msg,
            metadata: m.metadata,
        }],
    }
}

/// Splits a TCP byte stream into messages (RFC 6587): octet counting when a frame starts with
/// a digit, else one message per line. Returns the messages and how many bytes were consumed;
/// an incomplete frame stays in the buffer. Errs on a frame longer than `max`.
pub fn split_frames(buf: &[u8], max: usize) -> Result<(Vec<String>, usize), String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest[0] == b'\n' || rest[0] == b'\r' {
            pos += 1;
            continue;
        }
        if rest[0].is_ascii_digit() {
            let Some(sp) = rest.iter().position(|b| *b == b' ') else {
                if rest.len() > 10 {
                    return Err("octet-counted frame without a length".into());
                }
                break;
            };
            let len: usize = std::str::from_utf8(&rest[..sp])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("bad octet count")?;
            if len > max {
                return Err(format!("a syslog frame of {len} bytes exceeds {max}"));
            }
            if rest.len() < sp + 1 + len {
                break;
            }
            out.push(String::from_utf8_lossy(&rest[sp + 1..sp + 1 + len]).into_owned());
            pos += sp + 1 + len;
        } else {
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() > max {
                    return Err(format!("a syslog line longer than {max} bytes"));
                }
                break;
            };
            out.push(String::from_utf8_lossy(&rest[..nl]).into_owned());
            pos += nl + 1;
        }
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

    #[test]
    fn rfc5424_with_structured_data() {
        // RFC 5424's own example 3.
        let m = parse(r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#, NOW).unwrap();
        assert_eq!((m.facility, m.severity), ("local4", "notice"));
        assert_eq!(
            (m.host.as_str(), m.app.as_str()),
            ("mymachine.example.com", "evntslog")
        );
        assert_eq!(m.ts, Some(1_065_910_455_003_000_000));
        assert_eq!(m.msg, "An application event log entry...");
        assert!(m
            .metadata
            .contains(&("exampleSDID_32473_eventID".into(), "1011".into())));
        assert!(m.metadata.contains(&("msgid".into(), "ID47".into())));
    }

    #[test]
    fn rfc3164() {
        // RFC 3164's example.
        let m = parse(
            "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
            NOW,
        )
        .unwrap();
        assert_eq!((m.facility, m.severity), ("auth", "crit"));
        assert_eq!((m.host.as_str(), m.app.as_str()), ("mymachine", "su"));
        assert_eq!(m.msg, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            m.ts,
            medic_model::parse_rfc3339("2026-10-11T22:14:15Z").map(|ms| ms * 1_000_000)
        );
        assert!(parse("no pri", NOW).is_err());
        assert!(parse("<999>x", NOW).is_err());
    }

    #[test]
    fn tcp_framing() {
        let (m, used) = split_frames(b"11 <13>1 - - -\n<13>hello\n<13>partial", 1000).unwrap();
        assert_eq!(m, ["<13>1 - - -", "<13>hello"]);
        assert_eq!(used, 25);
        assert!(split_frames(b"99999 x", 100).is_err());
    }
}
