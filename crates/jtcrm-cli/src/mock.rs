//! `jtcrm mock <system> --port N`: runs one of the faithful mock servers of
//! `jtcrm-integrations` in the foreground, for local trials and for `system-test` against a
//! deployment that points its `*_API_URL` (or `SMTP_*`, `JTCRM_S3_*`) at it. Prints the base URL
//! and the credentials the mock expects, then serves until Ctrl-C/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use jtcrm_integrations::{d4sign, flyerp, llm, pabx, s3, smtp_mock, whatsapp};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum MockSystem {
    /// JT Telecom cloud PABX ("suite" API).
    Pabx,
    /// D4Sign electronic signature (REST v1, webhooks with Content-Hmac).
    D4sign,
    /// FlyERP (`/apis/{Acao}`).
    Flyerp,
    /// An OpenAI-compatible chat-completions model.
    Llm,
    /// WhatsApp Business Cloud API.
    Whatsapp,
    /// An S3-compatible object store (path-style, SigV4 verified), objects in memory.
    S3,
    /// An SMTP sink that keeps every message; `--http-port` serves `GET /messages` (JSON).
    Smtp,
}

#[derive(clap::Args)]
pub struct MockArgs {
    /// Which external system to imitate.
    pub system: MockSystem,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where the mock POSTs its webhooks/events (D4Sign postbacks, PABX call-end events,
    /// WhatsApp messages and statuses).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// `smtp` only: port of the HTTP view of received messages (`GET /messages`; 0 = any free
    /// port).
    #[arg(long, default_value_t = 0)]
    pub http_port: u16,
}

pub async fn run(args: MockArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::new(args.bind, args.port);
    if let MockSystem::Smtp = args.system {
        // Not an HTTP mock: the SMTP listener, then its HTTP view.
        let sink = smtp_mock::SmtpSink::bind(addr)
            .await
            .with_context(|| format!("não foi possível escutar em {addr}"))?;
        let http_addr = SocketAddr::new(args.bind, args.http_port);
        let listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("não foi possível escutar em {http_addr}"))?;
        let http_url = format!("http://{}", listener.local_addr()?);
        let view = sink.serve_http(listener);
        println!("mock SMTP em {}:{}", sink.host(), sink.port());
        println!(
            "SMTP_SERVER={} SMTP_PORT={} SMTP_TLS=none (qualquer usuário/senha)",
            sink.host(),
            sink.port()
        );
        println!("mensagens recebidas: GET {http_url}/messages");
        jtcrm::app::shutdown_signal().await;
        view.abort();
        drop(sink);
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("não foi possível escutar em {addr}"))?;
    // Each handle owns its server task: keep it alive until shutdown.
    match args.system {
        MockSystem::Pabx => {
            let opts = pabx::mock::MockPabxOptions {
                event_url: args.webhook_url,
                ..Default::default()
            };
            let (usuario, token) = (opts.usuario.clone(), opts.token.clone());
            let h = pabx::mock::serve(listener, opts).await;
            println!("mock PABX em {}", h.base_url());
            println!(
                "JT_TELECOM_API_URL={} JT_TELECOM_API_USER={usuario} JT_TELECOM_API_KEY={token}",
                h.base_url()
            );
            println!("ramais: 1001 Recepção, 1002 Vendas, 1003 Suporte (DDD 11)");
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::D4sign => {
            let opts = d4sign::mock::MockOptions {
                default_webhook_url: args.webhook_url,
                webhook_delay: Duration::from_secs(2),
                ..Default::default()
            };
            let safe = opts.safes.first().map(|s| s.0.clone()).unwrap_or_default();
            let (token, crypt, secret) = (
                opts.token_api.clone(),
                opts.crypt_key.clone(),
                opts.webhook_secret.clone(),
            );
            let h = d4sign::mock::serve(listener, opts).await?;
            println!("mock D4Sign em {}", h.base_url());
            println!(
                "D4SIGN_API_URL={} D4SIGN_API_KEY={token} D4SIGN_CRYPT_KEY={crypt}",
                h.base_url()
            );
            println!("cofre (safe): {safe}; segredo do webhook (Content-Hmac): {secret}");
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::Flyerp => {
            let opts = flyerp::mock::MockOptions::default();
            let token = opts.token.clone();
            let h = flyerp::mock::serve(listener, opts).await?;
            println!("mock FlyERP em {}", h.base_url());
            println!("FLYERP_API_URL={} FLYERP_API_KEY={token}", h.base_url());
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::Llm => {
            let h = llm::mock::serve(listener, llm::mock::MockLlmOptions::default())?;
            println!("mock LLM (OpenAI-compatible) em {}", h.base_url());
            println!(
                "base URL: {}/v1, modelo: qualquer, chave: qualquer",
                h.base_url()
            );
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::Whatsapp => {
            let opts = whatsapp::mock::MockWaOptions {
                webhook_url: args.webhook_url,
                ..Default::default()
            };
            let (token, secret, verify, phone) = (
                opts.access_token.clone(),
                opts.app_secret.clone(),
                opts.verify_token.clone(),
                opts.phone_number_id.clone(),
            );
            let h = whatsapp::mock::serve(listener, opts)?;
            println!("mock WhatsApp Cloud API em {}", h.base_url());
            println!(
                "token: {token}; app secret: {secret}; verify token: {verify}; phone_number_id: {phone}"
            );
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::S3 => {
            let opts = s3::mock::MockS3Options::default();
            let h = s3::mock::serve(listener, opts.clone()).await?;
            println!("mock S3 em {}", h.base_url());
            println!(
                "JTCRM_S3_ENDPOINT={} JTCRM_S3_BUCKET={} JTCRM_S3_REGION={} \
                 JTCRM_S3_ACCESS_KEY_ID={} JTCRM_S3_SECRET_ACCESS_KEY={}",
                h.base_url(),
                opts.bucket,
                opts.region,
                opts.access_key_id,
                opts.secret_access_key
            );
            jtcrm::app::shutdown_signal().await;
            drop(h);
        }
        MockSystem::Smtp => unreachable!("handled above"),
    }
    Ok(())
}
