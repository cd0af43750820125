//! Connection and request limits against the real binary: 2,000 idle connections and
//! oversized bodies at once leave medic answering; idle, half-sent and slow-body connections
//! are closed; connections over `server.max_connections` get a 503; each refusal is counted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{client, counter, Medic};

fn raise_own_fd_limit() {
    // SAFETY: getrlimit/setrlimit on this process with a struct we own.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        assert!(
            lim.rlim_max >= 4096,
            "this test needs 4,096 open files (ulimit -Hn is {})",
            lim.rlim_max
        );
    }
}

/// Reads until the peer closes (or `timeout`); what it sent.
fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> Option<String> {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&out).into_owned())
            }
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_oversized_bodies_do_not_stop_medic_answering() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        "server:\n  max_connections: 2040\n  idle_timeout: 8s\n  read_timeout: 2s\n  max_request_body: 64KiB\nremote_write:\n  max_body_size: 1MiB\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let addr = medic.addr.clone();

    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    eprintln!("2000 connections in {:?}", t.elapsed());
    // Over max_connections: answered 503 and closed. The limit leaves room for the test's own
    // and medic's self-scrape connections; 60 more surely cross it. Those let in stay idle
    // (holding their slot); each is read on its own thread.
    let extra: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    let answers: Vec<Option<String>> = std::thread::scope(|sc| {
        let readers: Vec<_> = extra
            .iter()
            .map(|s| {
                let mut s = s.try_clone().unwrap();
                sc.spawn(move || read_until_closed(&mut s, Duration::from_millis(1500)))
            })
            .collect();
        readers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = answers
        .iter()
        .flatten()
        .filter(|t| t.starts_with("HTTP/1.1 503"))
        .count();
    assert!(
        refused >= 15,
        "{refused} of 60 connections over the limit got a 503: {answers:?}\n{}",
        medic.stderr()
    );
    drop(extra);
    // Let medic see the closed extras go before the next requests.
    std::thread::sleep(Duration::from_millis(300));

    let c = client();
    // Oversized bodies at the same time: JSON over max_request_body, remote write over its own
    // limit; each refused with 413.
    let big_json = format!("[{{\"labels\":{{\"a\":\"{}\"}}}}]", "x".repeat(200_000));
    let mut sends = Vec::new();
    for i in 0..4 {
        let c = c.clone();
        let (url, body, ct) = if i % 2 == 0 {
            (
                medic.url("/api/v2/alerts"),
                big_json.clone().into_bytes(),
                "application/json",
            )
        } else {
            (
                medic.url("/api/v1/write"),
                vec![0u8; 12 << 20],
                "application/x-protobuf",
            )
        };
        sends.push(tokio::spawn(async move {
            c.post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let started = Instant::now();
    let r = c.get(medic.url("/-/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "/-/ready took {:?} with 2,000 idle connections",
        started.elapsed()
    );
    for s in sends {
        // A client may see the connection closed before it finished sending: also a refusal.
        if let Ok(code) = s.await.unwrap() {
            assert_eq!(code, 413, "an oversized body");
        }
    }

    // Idle connections are closed after idle_timeout.
    let t0 = Instant::now();
    let closed = read_until_closed(&mut idle[0], Duration::from_secs(25));
    assert!(closed.is_some(), "an idle connection stayed open");
    assert!(t0.elapsed() < Duration::from_secs(20));
    drop(idle);

    // Half-sent headers (sent before the idle connections opened): closed too.
    assert!(read_until_closed(&mut half, Duration::from_secs(15)).is_some());

    // A body that never finishes: 408 after read_timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{",
    )
    .unwrap();
    let answer = read_until_closed(&mut slow, Duration::from_secs(15)).unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    let metrics = c
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["max_connections", "read_timeout"] {
        let n = counter(
            &metrics,
            &format!("medic_http_connections_refused_total{{reason=\"{reason}\"}}"),
        );
        assert!(n >= 1.0, "no {reason} refusal counted:\n{metrics}");
    }
    assert!(
        metrics.contains("code=\"413\""),
        "413s not counted:\n{metrics}"
    );
}

#[tokio::test]
async fn alert_silence_and_client_rate_limits_refuse_with_their_status_and_counter() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        "server:\n  client_rate_limit: 1\n  client_rate_burst: 40\nalerting:\n  max_alerts: 5\n  max_silences: 2\n  max_silence_size_bytes: 1KiB\n",
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let alerts = |from: usize, n: usize| {
        serde_json::Value::Array(
            (from..from + n)
                .map(|i| serde_json::json!({"labels": {"alertname": "A", "i": i.to_string()}}))
                .collect(),
        )
    };
    let post = |path: &str, body: serde_json::Value| c.post(medic.url(path)).json(&body).send();
    assert_eq!(
        post("/api/v2/alerts", alerts(0, 4)).await.unwrap().status(),
        200
    );
    // Two more new ones would make 6: the batch is refused whole, nothing of it stored.
    let r = post("/api/v2/alerts", alerts(3, 3)).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let msg = r.text().await.unwrap();
    assert!(msg.contains("alerting.max_alerts"), "{msg}");
    let held: serde_json::Value = c
        .get(medic.url("/api/v2/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(held.as_array().unwrap().len(), 4, "half-applied: {held}");
    // Re-sending held alerts is not limited.
    assert_eq!(
        post("/api/v2/alerts", alerts(0, 4)).await.unwrap().status(),
        200
    );

    let now = medic_model::format_rfc3339(medic_model::Clock::now_ms(&medic_model::SystemClock));
    let silence = |comment: String| {
        serde_json::json!({"matchers": [{"name": "alertname", "value": "A", "isRegex": false}],
               "startsAt": now, "endsAt": "2099-01-01T00:00:00Z", "createdBy": "t", "comment": comment})
    };
    let r = post("/api/v2/silences", silence("x".repeat(2000)))
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "{}", r.text().await.unwrap());
    for _ in 0..2 {
        let r = post("/api/v2/silences", silence("ok".into()))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = post("/api/v2/silences", silence("ok".into()))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("maximum number of silences"));

    // The client's burst of 40 is spent well before 60 requests; health checks never are.
    let mut codes = Vec::new();
    for _ in 0..60 {
        codes.push(
            c.get(medic.url("/api/v1/alerts"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(codes.contains(&429), "{codes:?}");
    let r = c.get(medic.url("/-/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let metrics = c
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, want) in [
        ("medic_http_refused_total{reason=\"max_silences\"}", 1.0),
        (
            "medic_http_refused_total{reason=\"silence_too_large\"}",
            1.0,
        ),
        (
            "medic_http_refused_total{reason=\"client_rate_limit\"}",
            1.0,
        ),
        ("medic_alert_alerts_refused_over_limit_total", 2.0),
    ] {
        assert!(counter(&metrics, name) >= want, "{name}:\n{metrics}");
    }
}
