//! A real SMTP server that accepts every message and keeps it (the mock of an e-mail relay), for
//! tests (`jtcrm_testkit::smtp_sink`), `jtcrm mock smtp` and `jtcrm system-test`. It listens on
//! the address given (tests: 127.0.0.1 with a port chosen by the OS) and speaks enough RFC 5321
//! for any client: EHLO/HELO, AUTH PLAIN/LOGIN (any credentials), MAIL FROM, RCPT TO, DATA (with
//! dot-unstuffing), RSET, NOOP, QUIT. It stores every accepted message (envelope and raw data)
//! for assertions, and can be switched to misbehave:
//!
//! - [`SmtpSink::stop`] closes the listener (clients get "connection refused") and drops open
//!   sessions; [`SmtpSink::start`] listens again on the same port;
//! - [`SmtpSink::fail_with`] answers every `RCPT TO` with the given reply (e.g. `451` temporary,
//!   `550` permanent) until [`SmtpSink::accept`].
//!
//! [`SmtpSink::serve_http`] adds a small HTTP view for other processes: `GET /messages` answers
//! a JSON array of what arrived (`from`, `to`, `subject`, `body`, decoded).
//!
//! STARTTLS is not offered, so clients in opportunistic mode stay in clear text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message accepted by the sink.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The `MAIL FROM` address (without angle brackets).
    pub mail_from: String,
    /// The `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, CRLF line ends, dots unstuffed).
    pub data: String,
    /// The user name of `AUTH`, if the client authenticated.
    pub auth_user: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A received message as `GET /messages` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MessageView {
    /// 1-based, in arrival order.
    pub id: usize,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The text body, transfer-decoded, with `\n` line ends.
    pub body: String,
    pub received_at: DateTime<Utc>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
enum Behaviour {
    Accept,
    FailRcpt(u16, String),
}

struct Shared {
    messages: Mutex<Vec<ReceivedMessage>>,
    behaviour: Mutex<Behaviour>,
    received: Notify,
    connections: AtomicU64,
}

pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(h) = lock(&self.server).take() {
            h.abort();
        }
    }
}

impl SmtpSink {
    /// Starts a sink on 127.0.0.1 with a free port; panics when it cannot listen (tests).
    pub async fn start_new() -> SmtpSink {
        match Self::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(s) => s,
            Err(e) => panic!("smtp sink listen: {e}"),
        }
    }

    /// Starts a sink listening on `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<SmtpSink> {
        let shared = Arc::new(Shared {
            messages: Mutex::new(vec![]),
            behaviour: Mutex::new(Behaviour::Accept),
            received: Notify::new(),
            connections: AtomicU64::new(0),
        });
        let (addr, handle) = try_listen(addr, shared.clone()).await?;
        Ok(SmtpSink {
            addr,
            shared,
            server: Mutex::new(Some(handle)),
        })
    }

    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listener and every open session: new connections are refused.
    pub fn stop(&self) {
        if let Some(h) = lock(&self.server).take() {
            h.abort();
        }
    }

    /// Listens again on the same port (after [`SmtpSink::stop`]); a no-op when running.
    pub async fn start(&self) {
        if lock(&self.server).is_some() {
            return;
        }
        // The port was ours a moment ago; retry briefly in case the OS still holds it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match try_listen(self.addr, self.shared.clone()).await {
                Ok((_, h)) => {
                    *lock(&self.server) = Some(h);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("smtp sink could not listen again on {}: {e}", self.addr),
            }
        }
    }

    /// Answers every `RCPT TO` with `code text` (4xx: temporary, 5xx: permanent).
    pub fn fail_with(&self, code: u16, text: &str) {
        *lock(&self.shared.behaviour) = Behaviour::FailRcpt(code, text.to_string());
    }

    /// Back to accepting messages.
    pub fn accept(&self) {
        *lock(&self.shared.behaviour) = Behaviour::Accept;
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared.messages).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.messages).len()
    }

    /// TCP connections accepted so far (to assert "no SMTP traffic").
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.received.notified();
            let msgs = self.messages();
            if msgs.len() >= n {
                return msgs;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "smtp sink: expected {n} message(s) within {timeout:?}, got {}",
                    msgs.len()
                );
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}

impl SmtpSink {
    /// The messages as `GET /messages` shows them.
    pub fn views(&self) -> Vec<MessageView> {
        views(&self.shared)
    }

    /// Serves the HTTP view on `listener` until the returned task is aborted (or the process
    /// ends): `GET /messages` → `[{"id","from","to","subject","body","received_at"}]`,
    /// `DELETE /messages` empties the mailbox.
    pub fn serve_http(&self, listener: TcpListener) -> JoinHandle<()> {
        use axum::routing::get;
        let shared = self.shared.clone();
        let app = axum::Router::new()
            .route(
                "/messages",
                get(
                    |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                        axum::Json(views(&s))
                    },
                )
                .delete(
                    |axum::extract::State(s): axum::extract::State<Arc<Shared>>| async move {
                        lock(&s.messages).clear();
                        axum::http::StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }
}

fn views(shared: &Shared) -> Vec<MessageView> {
    lock(&shared.messages)
        .iter()
        .enumerate()
        .map(|(i, m)| MessageView {
            id: i + 1,
            from: m.mail_from.clone(),
            to: m.rcpt_to.clone(),
            subject: m.subject(),
            body: m.body_text(),
            received_at: m.received_at,
        })
        .collect()
}

async fn try_listen(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(64)?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        // Sessions live in this set, so stopping the server (aborting this task) drops them too.
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = shared.clone();
                    sessions.spawn(async move {
                        let _ = session(stream, shared).await;
                    });
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
    });
    Ok((local, handle))
}

fn angle_addr(arg: &str) -> String {
    // "FROM:<a@b> SIZE=123" → "a@b"
    let arg = arg.split_once(':').map(|(_, r)| r).unwrap_or(arg).trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(s), Some(e)) if e > s => arg[s + 1..e].to_string(),
        _ => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}

fn b64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = vec![];
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = T.iter().position(|&x| x == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// Reads one line (with its terminator) as lossy UTF-8; `0` at end of stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut String,
) -> std::io::Result<usize> {
    let mut buf = vec![];
    let n = r.read_until(b'\n', &mut buf).await?;
    out.push_str(&String::from_utf8_lossy(&buf));
    Ok(n)
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 jtcrm-sink ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = vec![];
    let mut auth_user: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if read_line(&mut r, &mut line).await? == 0 {
            return Ok(());
        }
        let cmd_line = line.trim_end_matches(['\r', '\n']).to_string();
        let (verb, arg) = match cmd_line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (cmd_line.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                w.write_all(
                    b"250-jtcrm-sink greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n",
                )
                .await?;
            }
            "HELO" => w.write_all(b"250 jtcrm-sink\r\n").await?,
            "AUTH" => {
                let mut parts = arg.split_whitespace();
                let mech = parts.next().unwrap_or("").to_ascii_uppercase();
                match mech.as_str() {
                    "PLAIN" => {
                        let payload = match parts.next() {
                            Some(p) => p.to_string(),
                            None => {
                                w.write_all(b"334 \r\n").await?;
                                let mut l = String::new();
                                read_line(&mut r, &mut l).await?;
                                l.trim().to_string()
                            }
                        };
                        let decoded = b64_decode(&payload);
                        let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                        auth_user = fields
                            .get(1)
                            .map(|u| String::from_utf8_lossy(u).to_string());
                        w.write_all(b"235 2.7.0 Authentication successful\r\n")
                            .await?;
                    }
                    "LOGIN" => {
                        w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        let mut u = String::new();
                        read_line(&mut r, &mut u).await?;
                        w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let mut p = String::new();
                        read_line(&mut r, &mut p).await?;
                        auth_user =
                            Some(String::from_utf8_lossy(&b64_decode(u.trim())).to_string());
                        w.write_all(b"235 2.7.0 Authentication successful\r\n")
                            .await?;
                    }
                    _ => {
                        w.write_all(b"504 5.5.4 Unrecognized authentication type\r\n")
                            .await?
                    }
                }
            }
            "MAIL" => {
                from = Some(angle_addr(&arg));
                rcpts.clear();
                w.write_all(b"250 2.1.0 Ok\r\n").await?;
            }
            "RCPT" => {
                if from.is_none() {
                    w.write_all(b"503 5.5.1 Need MAIL command\r\n").await?;
                    continue;
                }
                let behaviour = lock(&shared.behaviour).clone();
                match behaviour {
                    Behaviour::Accept => {
                        rcpts.push(angle_addr(&arg));
                        w.write_all(b"250 2.1.5 Ok\r\n").await?;
                    }
                    Behaviour::FailRcpt(code, text) => {
                        w.write_all(format!("{code} {text}\r\n").as_bytes()).await?;
                    }
                }
            }
            "DATA" => {
                if from.is_none() || rcpts.is_empty() {
                    w.write_all(b"554 5.5.1 No valid recipients\r\n").await?;
                    continue;
                }
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if read_line(&mut r, &mut l).await? == 0 {
                        return Ok(());
                    }
                    let content = l.trim_end_matches(['\r', '\n']);
                    if content == "." {
                        break;
                    }
                    let content = content.strip_prefix('.').unwrap_or(content);
                    data.push_str(content);
                    data.push_str("\r\n");
                }
                let msg = ReceivedMessage {
                    mail_from: from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpts),
                    data,
                    auth_user: auth_user.clone(),
                    received_at: Utc::now(),
                };
                let n = {
                    let mut m = lock(&shared.messages);
                    m.push(msg);
                    m.len()
                };
                shared.received.notify_waiters();
                w.write_all(format!("250 2.0.0 Ok: queued as SINK{n}\r\n").as_bytes())
                    .await?;
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                w.write_all(b"250 2.0.0 Ok\r\n").await?;
            }
            "NOOP" => w.write_all(b"250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "" => {}
            _ => w.write_all(b"502 5.5.2 Command not recognized\r\n").await?,
        }
    }
}

// ---------- parsing helpers for assertions ----------

fn qp_decode(s: &str) -> Vec<u8> {
    let mut out = vec![];
    let lines: Vec<&str> = s.split("\r\n").collect();
    for (i, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut j = 0;
        let mut soft_break = false;
        while j < bytes.len() {
            if bytes[j] == b'=' {
                if j + 1 == bytes.len() {
                    soft_break = true;
                    break;
                }
                if j + 2 < bytes.len()
                    && let Ok(v) = u8::from_str_radix(
                        std::str::from_utf8(&bytes[j + 1..j + 3]).unwrap_or(""),
                        16,
                    )
                {
                    out.push(v);
                    j += 3;
                    continue;
                }
            }
            out.push(bytes[j]);
            j += 1;
        }
        if !soft_break && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=` and `=?utf-8?q?…?=`).
pub fn decode_header_value(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        if parts.len() < 3 {
            out.push_str(&rest[start..]);
            return out;
        }
        let (enc, tail) = (parts[1], parts[2]);
        let Some(end) = tail.find("?=") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &tail[..end];
        let bytes = if enc.eq_ignore_ascii_case("b") {
            b64_decode(text)
        } else {
            qp_decode(&text.replace('_', " "))
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &tail[end + 2..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

impl ReceivedMessage {
    fn split(&self) -> (&str, &str) {
        self.data
            .split_once("\r\n\r\n")
            .unwrap_or((self.data.as_str(), ""))
    }

    /// The raw (unfolded) value of the first header named `name`.
    pub fn raw_header(&self, name: &str) -> Option<String> {
        let (head, _) = self.split();
        let mut unfolded: Vec<String> = vec![];
        for l in head.split("\r\n") {
            if (l.starts_with(' ') || l.starts_with('\t'))
                && let Some(last) = unfolded.last_mut()
            {
                last.push(' ');
                last.push_str(l.trim());
            } else {
                unfolded.push(l.to_string());
            }
        }
        unfolded.into_iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// A header with its encoded words decoded (e.g. `Subject` with accents).
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw_header(name).map(|v| decode_header_value(&v))
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The text body, transfer-decoded (quoted-printable, base64, 7bit/8bit), with `\n` line ends.
    pub fn body_text(&self) -> String {
        let (_, body) = self.split();
        let enc = self
            .raw_header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match enc.as_str() {
            "base64" => b64_decode(body),
            "quoted-printable" => qp_decode(body),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_http_view_lists_received_messages() {
        let sink = SmtpSink::start_new().await;
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let view_url = format!("http://{}/messages", http.local_addr().unwrap());
        let _view = sink.serve_http(http);
        let stream = TcpStream::connect((sink.host(), sink.port()))
            .await
            .unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        for cmd in [
            "",
            "HELO client\r\n",
            "MAIL FROM:<no-reply@x.test>\r\n",
            "RCPT TO:<Cliente@Example.com>\r\n",
            "DATA\r\n",
            "Subject: =?utf-8?q?Proposta_n=C2=BA_1?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nAbra: http://h/p/tok=\r\nen\r\n..fim\r\n.\r\n",
            "QUIT\r\n",
        ] {
            w.write_all(cmd.as_bytes()).await.unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert!(!line.starts_with('5'), "{cmd:?} -> {line}");
        }
        sink.wait_for(1, Duration::from_secs(5)).await;
        let views: Vec<MessageView> = reqwest::get(&view_url).await.unwrap().json().await.unwrap();
        assert_eq!(views.len(), 1);
        let m = &views[0];
        assert_eq!((m.id, m.from.as_str()), (1, "no-reply@x.test"));
        assert_eq!(m.to, vec!["Cliente@Example.com".to_string()]);
        assert_eq!(m.subject, "Proposta nº 1");
        assert_eq!(m.body, "Abra: http://h/p/token\n.fim\n");
        let c = reqwest::Client::new();
        assert_eq!(
            c.delete(&view_url).send().await.unwrap().status().as_u16(),
            204
        );
        assert!(sink.messages().is_empty());
    }

    #[test]
    fn decodes_encoded_words_and_bodies() {
        assert_eq!(
            decode_header_value("=?utf-8?b?TGVtYnJldGU6IGxpZ2HDp8Ojbw==?="),
            "Lembrete: ligação"
        );
        assert_eq!(
            decode_header_value("=?utf-8?q?Ol=C3=A1_Jo=C3=A3o?="),
            "Olá João"
        );
        assert_eq!(
            decode_header_value("=?utf-8?b?T2zDoQ==?= =?utf-8?b?IEpvw6Nv?="),
            "Olá João"
        );
        assert_eq!(decode_header_value("plain"), "plain");
        assert_eq!(
            String::from_utf8(qp_decode("Ol=C3=A1, Jo=\r\n=C3=A3o!\r\nfim")).unwrap(),
            "Olá, João!\r\nfim"
        );
    }
}
