//! Every kind of secret the detectors know, pushed into a real store, flushed, then searched for
//! in every file of the data directory: none may be found.

use medic_logs::store::{LogStore, Options};
use medic_logs::{Entry, Stream};
use medic_model::Labels;

const NS: i64 = 1_000_000_000;

/// (the secret, a line that carries it) — one per detector, some in labels and metadata.
const SECRETS: &[(&str, &str)] = &[
    ("hunter2-Pa55", "login user=bob password=hunter2-Pa55 ok"),
    ("s3cr3t-json-v4lue", r#"{"user":"bob","client_secret":"s3cr3t-json-v4lue"}"#),
    ("mF_9.B5f-4.1JqM", "GET /api Authorization: Bearer mF_9.B5f-4.1JqM"),
    ("AKIAIOSFODNN7EXAMPLE", "aws key AKIAIOSFODNN7EXAMPLE used"),
    ("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "maps key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),
    ("ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123", "cloned with ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123"),
    ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"),
    ("eyJzdWIiOiIxMjM0NTY3ODkwIn0", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("4111 1111 1111 1111", "paid with 4111 1111 1111 1111 today"),
    ("5500-0000-0000-0004", "card=5500-0000-0000-0004"),
    ("alice.smith@example.com", "mail to alice.smith@example.com bounced"),
    ("+8613800138000", "sms to +8613800138000 failed"),
    ("13912345678", "手机 13912345678 验证码已发送"),
    ("(415) 555-0132", "call (415) 555-0132 back"),
    ("tok-9f8e7d6c5b", "refresh_token: tok-9f8e7d6c5b"),
];

#[test]
fn no_secret_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(Options::new(dir.path())).unwrap();
    let now = 1_750_000_000 * NS;
    let mut entries: Vec<Entry> = SECRETS
        .iter()
        .enumerate()
        .map(|(i, (_, line))| Entry::new(now - 100 * NS + i as i64, *line))
        .collect();
    // In structured metadata too.
    entries[0]
        .metadata
        .push(("user_email".into(), "carol@example.org".into()));
    let push = vec![
        Stream {
            labels: Labels::from_pairs([("app", "shop")]),
            entries,
        },
        // And in a label value.
        Stream {
            labels: Labels::from_pairs([("app", "shop"), ("owner", "dave@example.net")]),
            entries: vec![Entry::new(now - 50 * NS, "plain line")],
        },
    ];
    store.push(push, now).unwrap();
    // Half in the WAL only, half flushed to a part as well.
    store.flush().unwrap();
    store
        .push(
            vec![Stream {
                labels: Labels::from_pairs([("app", "shop")]),
                entries: vec![Entry::new(now - 10 * NS, SECRETS[0].1)],
            }],
            now,
        )
        .unwrap();
    let mut needles: Vec<&str> = SECRETS.iter().map(|s| s.0).collect();
    needles.extend(["carol@example.org", "dave@example.net"]);
    let mut found = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            // Parts are compressed: search their decompressed chunks as well, by reading back.
            for n in &needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    found.push(format!("{n} in {}", path.display()));
                }
            }
        }
    }
    assert!(
        files >= 2,
        "expected a WAL segment and a part, found {files} files"
    );
    // Compressed parts could hide a secret from a byte search: read everything back too.
    let all = store
        .select_streams(&[medic_model::Matcher::equal("app", "shop")], 0, i64::MAX)
        .unwrap();
    let mut text = String::new();
    for s in &all {
        text.push_str(&format!("{:?}", s.labels));
        for e in &s.entries {
            text.push_str(&e.line);
            text.push_str(&format!("{:?}", e.metadata));
        }
    }
    for n in &needles {
        if text.contains(n) {
            found.push(format!("{n} read back from the store"));
        }
    }
    assert!(
        found.is_empty(),
        "secrets on disk: {found:#?}\nstored text: {text}"
    );
    // Every built-in detector fired at least once.
    for (rule, n) in store.redactor().counts() {
        assert!(n > 0, "detector {rule} never fired");
    }
}
