//! The signature-provider interface. `send` freezes the document and then hands the contract and
//! its pending signers to a provider **inside the send's transaction**: a provider only writes
//! (links, e-mails and jobs go through the outbox and the job queue), so nothing is sent unless
//! the contract really became `sent`. This issue ships `email_link`; the D4Sign provider
//! implements the same trait by enqueuing its upload job (docs/contracts.md, "Providers").

use chrono::{DateTime, Utc};
use jtcrm_types::dto::contracts::{SignatureProvider, SignerLink};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::model::{contract, signer};
use crate::domains::email;
use crate::domains::proposals::render;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::security::{random_token, sha256_hex};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::tenancy::BoxFuture;

/// What a provider gets.
pub struct Dispatch<'a> {
    pub state: &'a AppState,
    pub txn: &'a DatabaseTransaction,
    pub company: &'a str,
    pub contract: &'a contract::Model,
    /// The signers still to sign, in order.
    pub signers: &'a [signer::Model],
    /// The origin signers reach this server at (for links).
    pub base_url: &'a str,
    pub message: Option<&'a str>,
    pub actor_id: Uuid,
    /// When the signers' links stop working.
    pub expires_at: DateTime<Utc>,
}

pub trait Provider: Send + Sync {
    fn kind(&self) -> SignatureProvider;
    /// Checks the signers before anything is written (e.g. an e-mail for each).
    fn check(&self, signers: &[signer::Model]) -> AppResult<()>;
    /// Starts the signature of every signer in `d.signers`.
    fn dispatch<'a>(&'a self, d: Dispatch<'a>) -> BoxFuture<'a, AppResult<Vec<SignerLink>>>;
}

/// The provider of a kind.
pub fn of(kind: SignatureProvider) -> &'static dyn Provider {
    match kind {
        SignatureProvider::EmailLink => &EmailLink,
    }
}

/// A signer link token: the tenant id (32 hex digits) followed by 32 random bytes (base64url), so
/// the lookup is `(tenant_id, sha256)`. Only the hash is stored.
pub fn new_token(tenant_id: Uuid) -> String {
    format!("{}{}", tenant_id.simple(), random_token(32))
}

/// Each signer gets an e-mail with a personal link to review the PDF and sign with name and CPF.
pub struct EmailLink;

impl Provider for EmailLink {
    fn kind(&self) -> SignatureProvider {
        SignatureProvider::EmailLink
    }

    fn check(&self, signers: &[signer::Model]) -> AppResult<()> {
        if signers.is_empty() {
            return Err(AppError::field(
                "signers",
                "required",
                "O contrato não tem signatários pendentes",
            ));
        }
        for s in signers {
            if s.email.is_none() {
                return Err(AppError::field(
                    &format!("signers[{}].email", s.position - 1),
                    "required",
                    "Para enviar por link, cada signatário precisa de e-mail",
                ));
            }
        }
        Ok(())
    }

    fn dispatch<'a>(&'a self, d: Dispatch<'a>) -> BoxFuture<'a, AppResult<Vec<SignerLink>>> {
        Box::pin(async move {
            let c = d.contract;
            let mut links = vec![];
            for s in d.signers {
                let token = new_token(c.tenant_id);
                let url = format!("{}/c/{token}", d.base_url.trim_end_matches('/'));
                let mut am = s.clone().into_active_model();
                am.link_token_hash = Set(Some(sha256_hex(&token)));
                am.link_expires_at = Set(Some(d.expires_at));
                signer::Entity::update(am).exec(d.txn).await?;
                let mut body = String::new();
                if let Some(msg) = d.message {
                    body.push_str(msg);
                    body.push_str("\n\n");
                }
                body.push_str(&format!(
                    "Olá, {name}.\n\n{company} enviou o contrato {number} ({title}) para a sua \
                     assinatura.\n\nRevise o documento (PDF) e assine informando seu nome e CPF \
                     neste link pessoal:\n{url}\n\nO link é válido até {until}.\n",
                    name = s.name,
                    company = d.company,
                    number = c.number,
                    title = c.title,
                    until = render::date_br(
                        d.expires_at
                            .with_timezone(&chrono_tz::America::Sao_Paulo)
                            .date_naive()
                    ),
                ));
                let email_id = match &s.email {
                    Some(to) => Some(
                        email::queue(
                            d.txn,
                            &d.state.settings,
                            email::NewEmail {
                                tenant_id: c.tenant_id,
                                to: to.clone(),
                                subject: format!(
                                    "Contrato {} para assinatura — {}",
                                    c.number, d.company
                                ),
                                body_text: body,
                                lead_id: c.lead_id,
                                user_id: None,
                                kind: "contract",
                                idempotency_key: None,
                                actor_id: Some(d.actor_id),
                            },
                        )
                        .await?,
                    ),
                    None => None,
                };
                links.push(SignerLink {
                    signer_id: s.id,
                    email: s.email.clone(),
                    url,
                    email_id,
                });
            }
            Ok(links)
        })
    }
}
