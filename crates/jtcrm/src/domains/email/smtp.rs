//! The SMTP adapter over lettre: builds the MIME message (UTF-8 plain text, `From` with the
//! company's display name, `Reply-To`, our own `Message-ID`) and hands it to the relay named by
//! `SMTP_SERVER`/`SMTP_PORT`, securing the connection as `SMTP_TLS` says (by default implicit TLS on
//! 465 and STARTTLS whenever the server offers it elsewhere). Failures are classified for the job
//! queue: a permanent (5xx) reply will fail the same way again; anything else is worth a retry.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

use jtcrm_kernel::config::{Settings, SmtpTls};

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Network trouble, timeouts, TLS problems, 4xx replies: retry later.
    Transient(String),
    /// A 5xx reply or a message that cannot be built: retrying cannot help.
    Permanent(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) => m,
        }
    }
}

/// A message ready to be built.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub from_name: &'a str,
    pub from: &'a str,
    pub reply_to: Option<&'a str>,
    pub to: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub message_id: &'a str,
}

/// True when lettre accepts `s` as an address (`local@domain`).
pub fn is_valid_address(s: &str) -> bool {
    s.parse::<Address>().is_ok()
}

/// The domain of an address (`localhost` when it has none).
fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost")
}

/// The `Message-ID` of an email: derived from its id, so every attempt of one email carries the
/// same id and receiving systems can recognise a duplicate delivery.
pub fn message_id(email_id: Uuid, from: &str) -> String {
    format!("<{}@{}>", email_id, domain_of(from))
}

fn mailbox(name: Option<&str>, addr: &str, what: &str) -> Result<Mailbox, SendError> {
    let address = addr
        .parse::<Address>()
        .map_err(|e| SendError::Permanent(format!("endereço {what} inválido ({addr}): {e}")))?;
    Ok(Mailbox::new(
        name.map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        address,
    ))
}

/// Builds the MIME message. Non-ASCII subjects and names are RFC 2047-encoded and the body gets a
/// transfer encoding by lettre, so Portuguese text survives any relay.
pub fn build_message(o: &Outgoing<'_>) -> Result<Message, SendError> {
    let mut b = Message::builder()
        .from(mailbox(Some(o.from_name), o.from, "do remetente")?)
        .to(mailbox(None, o.to, "do destinatário")?)
        .subject(o.subject)
        .message_id(Some(o.message_id.to_string()))
        .date_now();
    if let Some(r) = o.reply_to {
        b = b.reply_to(mailbox(None, r, "de resposta")?);
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(o.body_text.to_string())
        .map_err(|e| SendError::Permanent(format!("mensagem inválida: {e}")))
}

fn transport(s: &Settings, host: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let params = || {
        TlsParameters::new(host.to_string())
            .map_err(|e| SendError::Transient(format!("configuração TLS inválida: {e}")))
    };
    let tls = match s.smtp_tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(params()?),
        SmtpTls::Tls => Tls::Wrapper(params()?),
        SmtpTls::Auto if s.smtp_port == 465 => Tls::Wrapper(params()?),
        SmtpTls::Auto => Tls::Opportunistic(params()?),
    };
    let from = s.smtp_from_address();
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(s.smtp_port)
        .timeout(Some(Duration::from_secs(s.smtp_timeout_secs)))
        .hello_name(ClientId::Domain(domain_of(&from).to_string()))
        .tls(tls);
    if let Some(user) = &s.smtp_username {
        let pass = s
            .smtp_password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        b = b.credentials(Credentials::new(user.clone(), pass));
    }
    Ok(b.build())
}

/// Sends `msg` through the configured relay; returns the server's final reply (e.g.
/// `250 2.0.0 Ok: queued as 4Xk2`).
pub async fn send(s: &Settings, msg: &Message) -> Result<String, SendError> {
    let Some(host) = s.smtp_server.as_deref() else {
        return Err(SendError::Permanent(
            "SMTP não configurado (SMTP_SERVER)".into(),
        ));
    };
    let transport = transport(s, host)?;
    // lettre bounds each command by the timeout; this bounds the whole conversation too.
    let overall = Duration::from_secs(s.smtp_timeout_secs.saturating_mul(4).max(5));
    match tokio::time::timeout(overall, transport.send(msg.clone())).await {
        Err(_) => Err(SendError::Transient(format!(
            "o servidor SMTP {host}:{} não respondeu em {} s",
            s.smtp_port,
            overall.as_secs()
        ))),
        Ok(Ok(resp)) => Ok(format!(
            "{} {}",
            resp.code(),
            resp.message().collect::<Vec<_>>().join(" ")
        )),
        Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(format!(
            "o servidor SMTP recusou a mensagem: {e}"
        ))),
        Ok(Err(e)) => Err(SendError::Transient(format!(
            "falha temporária ao falar com {host}:{}: {e}",
            s.smtp_port
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn message_has_identity_headers_and_utf8_subject() {
        let id = message_id(Uuid::nil(), "no-reply@crm.example.com.br");
        assert_eq!(
            id,
            "<00000000-0000-0000-0000-000000000000@crm.example.com.br>"
        );
        let m = build_message(&Outgoing {
            from_name: "Provedor São João",
            from: "no-reply@crm.example.com.br",
            reply_to: Some("vendas@provedor.com.br"),
            to: "cliente@exemplo.com.br",
            subject: "Lembrete: ligação às 14h",
            body_text: "Olá, João! Atenção à reunião.",
            message_id: &id,
        })
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <00000000-0000-0000-0000-000000000000@crm.example.com.br>"),
            "{raw}"
        );
        assert!(raw.contains("Reply-To: vendas@provedor.com.br"), "{raw}");
        assert!(raw.contains("<no-reply@crm.example.com.br>"), "{raw}");
        assert!(
            raw.lines()
                .any(|l| l.starts_with("Subject: Lembrete: =?utf-8?b?")),
            "encoded subject: {raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
    }

    #[test]
    fn invalid_addresses_are_permanent() {
        let e = build_message(&Outgoing {
            from_name: "x",
            from: "no-reply@x.com",
            reply_to: None,
            to: "not an address",
            subject: "s",
            body_text: "b",
            message_id: "<a@b>",
        })
        .unwrap_err();
        assert!(matches!(e, SendError::Permanent(_)));
        assert!(is_valid_address("a@b.com"));
        assert!(!is_valid_address("a b@c"));
    }
}
