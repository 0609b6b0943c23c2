//! Webhooks.

#[allow(unused_imports)]
use super::*;

pub(super) fn ipv4_allowed(ip: std::net::Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xFE) == 18)
        || o[0] >= 240)
}

/// Public addresses only; loopback when the deployment allows it (tests, development).
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_allowed(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return allow_loopback;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return ipv4_allowed(v4, allow_loopback);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xFE00) == 0xFC00
                || (s[0] & 0xFFC0) == 0xFE80
                || (s[0] == 0x2001 && s[1] == 0x0DB8)
                || (s[0] == 0x0064 && s[1] == 0xFF9B))
        }
    }
}

/// The address of a URL host written as an IP (`[::1]` included).
pub(super) fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks a webhook URL: `http`/`https`, no credentials, and no private, link-local or (unless
/// allowed) loopback host. Names are resolved and checked again at send time.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<reqwest::Url, &'static str> {
    if raw.len() > 2000 {
        return Err("URL longa demais (máximo 2000 caracteres)");
    }
    let url = reqwest::Url::parse(raw).map_err(|_| "URL inválida")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("Use uma URL http ou https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Não inclua usuário e senha na URL");
    }
    let host = url.host_str().ok_or("URL sem host")?;
    match host_ip(host) {
        Some(ip) if !ip_allowed(ip, allow_loopback) => {
            return Err("Endereços privados ou locais não são permitidos");
        }
        Some(_) => {}
        None => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            if !allow_loopback && (d == "localhost" || d.ends_with(".localhost")) {
                return Err("Endereços privados ou locais não são permitidos");
            }
        }
    }
    Ok(url)
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `raw_url`, signed, with timeouts and no redirects, to the addresses checked
/// here (pinned, so a DNS answer cannot change between the check and the connection).
pub(super) async fn send_webhook(
    raw_url: &str,
    secret: &str,
    delivery: &str,
    event_type: &str,
    body: Vec<u8>,
    allow_loopback: bool,
) -> Result<u16, Failure> {
    let url = check_url(raw_url, allow_loopback).map_err(Failure::fatal)?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WEBHOOK_TIMEOUT)
        .connect_timeout(WEBHOOK_CONNECT_TIMEOUT)
        .no_proxy()
        .user_agent(concat!("jtcrm-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(host) = url.host_str().filter(|h| host_ip(h).is_none()) {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Failure::transient(format!("não foi possível resolver {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Failure::transient(format!("{host} não tem endereço")));
        }
        if addrs.iter().any(|a| !ip_allowed(a.ip(), allow_loopback)) {
            return Err(Failure::fatal(
                "O destino do webhook resolve para um endereço privado ou local.",
            ));
        }
        builder = builder.resolve_to_addrs(host, &addrs);
    }
    let client = builder
        .build()
        .map_err(|e| Failure::transient(format!("cliente HTTP: {e}")))?;
    let sig = signature(secret, &body);
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Jtcrm-Signature", sig)
        .header("X-Jtcrm-Delivery", delivery)
        .header("X-Jtcrm-Event", event_type)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() {
                "tempo esgotado"
            } else if e.is_connect() {
                "falha de conexão"
            } else {
                "falha na requisição"
            };
            Failure::transient(format!("webhook: {what}"))
        })?;
    let status = res.status().as_u16();
    match status {
        200..=299 => Ok(status),
        408 | 425 | 429 | 500..=599 => Err(Failure::transient(format!(
            "o destino respondeu HTTP {status}"
        ))),
        _ => Err(Failure::fatal(format!("o destino respondeu HTTP {status}"))),
    }
}
