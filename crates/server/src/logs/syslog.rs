//! Syslog listeners (`logs.syslog`): TCP (RFC 6587 framing) and UDP (one message per datagram).
//! What arrives together goes to the store as one push (one WAL fsync); a message that does not
//! parse is stored as it came, under `job="syslog"`, and counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use medic_logs::ingest::syslog;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};

use super::{now_ns, Logs};

/// Messages that did not parse as RFC 5424 or 3164 (stored raw).
pub static UNPARSED: AtomicU64 = AtomicU64::new(0);

/// What the listeners share.
#[derive(Clone)]
pub struct Syslog {
    pub logs: Arc<Logs>,
    pub labels: BTreeMap<String, String>,
    pub max_message: usize,
}

impl Syslog {
    fn store(&self, raw: Vec<String>) {
        let now = now_ns();
        let mut push = Vec::with_capacity(raw.len());
        for r in raw {
            let stream = match syslog::parse(&r, now) {
                Ok(m) => syslog::to_stream(m, &self.labels, now),
                Err(_) => {
                    UNPARSED.fetch_add(1, Ordering::Relaxed);
                    let m = syslog::Message {
                        ts: None,
                        facility: "",
                        severity: "",
                        host: String::new(),
                        app: String::new(),
                        metadata: Vec::new(),
                        msg: r,
                    };
                    syslog::to_stream(m, &self.labels, now)
                }
            };
            push.push(stream);
        }
        if let Err(e) = self.logs.store.push(push, now) {
            warn!(error = %e, "syslog: storing messages failed");
        }
    }

    /// Accepts TCP connections on `listener` until the task is dropped.
    pub async fn serve_tcp(self, listener: TcpListener) {
        info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "syslog TCP listening");
        loop {
            let Ok((mut conn, peer)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = vec![0u8; 64 << 10];
                loop {
                    let n = match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    match syslog::split_frames(&buf, me.max_message) {
                        Ok((msgs, used)) => {
                            buf.drain(..used);
                            if !msgs.is_empty() {
                                let me = me.clone();
                                let _ = tokio::task::spawn_blocking(move || me.store(msgs)).await;
                            }
                        }
                        Err(e) => {
                            warn!(%peer, error = %e, "syslog TCP: closing the connection");
                            break;
                        }
                    }
                }
            });
        }
    }

    /// Reads datagrams from `socket` until the task is dropped.
    pub async fn serve_udp(self, socket: UdpSocket) {
        info!(addr = %socket.local_addr().map(|a| a.to_string()).unwrap_or_default(), "syslog UDP listening");
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let Ok(n) = socket.recv(&mut buf).await else {
                continue;
            };
            let mut msgs = vec![String::from_utf8_lossy(&buf[..n]).into_owned()];
            // Whatever else is already waiting joins the same push.
            while msgs.len() < 1000 {
                match socket.try_recv(&mut buf) {
                    Ok(n) => msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) => break,
                }
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.store(msgs)).await;
        }
    }
}
