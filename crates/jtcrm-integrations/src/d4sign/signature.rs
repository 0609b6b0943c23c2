//! The provider-neutral e-signature trait and its vocabulary.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use jtcrm_types::br::Cpf;

/// A boxed, `Send` future, so [`SignatureProvider`] stays usable as `dyn SignatureProvider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an e-signature call failed. [`SignError::is_retryable`] tells a job runner whether to
/// try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The credentials were refused (HTTP 401/403). Retrying will not help until they change.
    #[error("e-signature provider refused the credentials")]
    Unauthorized,
    /// The provider understood the call and refused it (4xx with `{"message"}`): a missing
    /// document, a wrong state, invalid data. Do not retry.
    #[error("e-signature provider rejected the request: {0}")]
    Rejected(String),
    /// Network failure, timeout, 408/429 or 5xx. Retry with backoff.
    #[error("e-signature provider unreachable or failing: {0}")]
    Transport(String),
    /// HTTP success but a body we cannot make sense of. Not retried automatically: it needs a
    /// human (or a code change).
    #[error("unexpected response from the e-signature provider: {0}")]
    InvalidResponse(String),
}

impl SignError {
    /// Whether the same call may succeed later unchanged (only [`SignError::Transport`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SignError::Transport(_))
    }
}

/// What a signer is asked to do on the document (D4Sign `act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignerAct {
    /// 1 Assinar.
    Sign,
    /// 2 Aprovar.
    Approve,
    /// 3 Reconhecer.
    Acknowledge,
    /// 4 Assinar como parte.
    Party,
    /// 5 Assinar como testemunha.
    Witness,
    /// 6 Assinar como interveniente.
    Intervening,
    /// 7 Acusar recebimento.
    AcknowledgeReceipt,
    /// Any other D4Sign code (8–13: issuer/guarantor variants, or newer ones).
    Other(u8),
}

impl SignerAct {
    /// The D4Sign numeric code.
    pub fn code(self) -> u8 {
        match self {
            SignerAct::Sign => 1,
            SignerAct::Approve => 2,
            SignerAct::Acknowledge => 3,
            SignerAct::Party => 4,
            SignerAct::Witness => 5,
            SignerAct::Intervening => 6,
            SignerAct::AcknowledgeReceipt => 7,
            SignerAct::Other(c) => c,
        }
    }

    /// From the D4Sign numeric code.
    pub fn from_code(code: u8) -> SignerAct {
        match code {
            1 => SignerAct::Sign,
            2 => SignerAct::Approve,
            3 => SignerAct::Acknowledge,
            4 => SignerAct::Party,
            5 => SignerAct::Witness,
            6 => SignerAct::Intervening,
            7 => SignerAct::AcknowledgeReceipt,
            c => SignerAct::Other(c),
        }
    }
}

/// A person asked to sign (or approve, witness, ...) a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub email: String,
    /// Display name. Empty means "let the signer fill it in".
    pub name: String,
    /// CPF, when known (Brazilian signers). Sent as the signer's document.
    pub cpf: Option<Cpf>,
    pub act: SignerAct,
    /// The signer has no CPF (D4Sign `foreign:"1"`).
    pub foreign: bool,
    /// Require an ICP-Brasil digital certificate (D4Sign `certificadoicpbr:"1"`).
    pub icp_brasil_certificate: bool,
    /// In-person signature (D4Sign `assinatura_presencial:"1"`).
    pub in_person: bool,
}

impl Signer {
    /// A Brazilian signer with the default options (e-mail link, no certificate).
    pub fn new(email: impl Into<String>, name: impl Into<String>, act: SignerAct) -> Signer {
        Signer {
            email: email.into(),
            name: name.into(),
            cpf: None,
            act,
            foreign: false,
            icp_brasil_certificate: false,
            in_person: false,
        }
    }

    /// Sets the CPF.
    pub fn with_cpf(mut self, cpf: Cpf) -> Signer {
        self.cpf = Some(cpf);
        self
    }

    /// Marks the signer as foreign (no CPF).
    pub fn foreign(mut self) -> Signer {
        self.foreign = true;
        self
    }
}

/// The provider's handle of a registered signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerKey {
    pub email: String,
    /// D4Sign `key_signer`.
    pub key: String,
}

/// Where a document stands, provider-neutral (D4Sign `statusId` 1–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentState {
    /// 7 Editando (rarely seen through the API).
    Editing,
    /// 1 Processando: just uploaded, the provider is still converting it.
    Processing,
    /// 2 Aguardando Signatários: uploaded, no signer list sent yet.
    WaitingSigners,
    /// 3 Aguardando Assinaturas: sent, at least one signature missing.
    WaitingSignatures,
    /// 4 Finalizado: every signer signed.
    Finished,
    /// 5 Arquivado.
    Archived,
    /// 6 Cancelado (by the account, or because a signer refused).
    Cancelled,
}

impl DocumentState {
    /// From the D4Sign `statusId` (a string on the wire, e.g. `"3"`).
    pub fn from_status_id(id: &str) -> Option<DocumentState> {
        Some(match id.trim() {
            "1" => DocumentState::Processing,
            "2" => DocumentState::WaitingSigners,
            "3" => DocumentState::WaitingSignatures,
            "4" => DocumentState::Finished,
            "5" => DocumentState::Archived,
            "6" => DocumentState::Cancelled,
            "7" => DocumentState::Editing,
            _ => return None,
        })
    }

    /// The D4Sign `statusId`.
    pub fn status_id(self) -> u8 {
        match self {
            DocumentState::Processing => 1,
            DocumentState::WaitingSigners => 2,
            DocumentState::WaitingSignatures => 3,
            DocumentState::Finished => 4,
            DocumentState::Archived => 5,
            DocumentState::Cancelled => 6,
            DocumentState::Editing => 7,
        }
    }

    /// The D4Sign `statusName` (pt-BR).
    pub fn status_name(self) -> &'static str {
        match self {
            DocumentState::Processing => "Processando",
            DocumentState::WaitingSigners => "Aguardando Signatários",
            DocumentState::WaitingSignatures => "Aguardando Assinaturas",
            DocumentState::Finished => "Finalizado",
            DocumentState::Archived => "Arquivado",
            DocumentState::Cancelled => "Cancelado",
            DocumentState::Editing => "Editando",
        }
    }

    /// Monotonic rank along the life of a document: Editing 0 < Processing 1 < WaitingSigners
    /// 2 < WaitingSignatures 3 < Finished 4 < Archived 5; Cancelled 6. Postbacks arrive late,
    /// twice or out of order, so a caller stores the state only when
    /// [`DocumentState::may_advance_to`] says so.
    pub fn rank(self) -> u8 {
        match self {
            DocumentState::Editing => 0,
            DocumentState::Processing => 1,
            DocumentState::WaitingSigners => 2,
            DocumentState::WaitingSignatures => 3,
            DocumentState::Finished => 4,
            DocumentState::Archived => 5,
            DocumentState::Cancelled => 6,
        }
    }

    /// Finished, Archived and Cancelled never change back.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DocumentState::Finished | DocumentState::Archived | DocumentState::Cancelled
        )
    }

    /// Whether moving from `self` to `next` goes forward: a strictly higher rank, except that
    /// a finished (or archived) document is never cancelled afterwards and a cancelled one
    /// never moves again. Equal states return `false` (a duplicate postback changes nothing).
    pub fn may_advance_to(self, next: DocumentState) -> bool {
        match self {
            DocumentState::Cancelled => false,
            DocumentState::Finished | DocumentState::Archived => {
                next == DocumentState::Archived && self != DocumentState::Archived
            }
            _ => next.rank() > self.rank(),
        }
    }
}

impl fmt::Display for DocumentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status_name())
    }
}

/// A signer's progress on a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerStatus {
    /// D4Sign `key_signer`.
    pub key: String,
    pub email: String,
    /// D4Sign `user_name` (empty until known).
    pub name: String,
    pub act: Option<SignerAct>,
    pub signed: bool,
    /// IP the signature came from, when the provider tells it.
    pub ip: Option<String>,
    /// When the signer signed, as the provider wrote it (D4Sign: `sign_info.date_signed`,
    /// format not guaranteed, so kept verbatim).
    pub signed_at: Option<String>,
}

/// A document's state and its signers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentStatus {
    pub document_id: String,
    pub name: String,
    pub state: DocumentState,
    /// D4Sign `statusComment` (e.g. the cancel reason), when not empty.
    pub comment: Option<String>,
    /// D4Sign `whoCanceled`, when not empty.
    pub cancelled_by: Option<String>,
    pub signers: Vec<SignerStatus>,
}

impl DocumentStatus {
    /// Every listed signer has signed (false when there are none).
    pub fn all_signed(&self) -> bool {
        !self.signers.is_empty() && self.signers.iter().all(|s| s.signed)
    }
}

/// An electronic-signature provider. D4Sign is [`super::Client`]; the CRM only sees this.
///
/// Each method is one remote operation; none retries by itself (callers retry when
/// [`SignError::is_retryable`]).
pub trait SignatureProvider: Send + Sync {
    /// Uploads a document (PDF bytes and file name) into a safe (a D4Sign "cofre"); returns
    /// the new document id.
    fn upload_document<'a>(
        &'a self,
        safe_id: &'a str,
        file_name: &'a str,
        pdf: Bytes,
    ) -> BoxFuture<'a, Result<String, SignError>>;

    /// Registers signers on a document; returns one key per signer, in the given order.
    /// Signers whose e-mail is already listed on the document are not added twice (their
    /// existing key is returned), so a retry is harmless.
    fn add_signers<'a>(
        &'a self,
        document_id: &'a str,
        signers: &'a [Signer],
    ) -> BoxFuture<'a, Result<Vec<SignerKey>, SignError>>;

    /// Sends the document to its signers with a message (the provider e-mails them).
    fn send_to_signers<'a>(
        &'a self,
        document_id: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>>;

    /// Reads the document state and every signer's progress.
    fn status<'a>(
        &'a self,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<DocumentStatus, SignError>>;

    /// Cancels the document with a comment.
    fn cancel<'a>(
        &'a self,
        document_id: &'a str,
        comment: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>>;

    /// Downloads the (signed, when finished) PDF.
    fn download_pdf<'a>(&'a self, document_id: &'a str) -> BoxFuture<'a, Result<Bytes, SignError>>;

    /// Asks the provider to POST status changes of this document to `url`.
    fn register_webhook<'a>(
        &'a self,
        document_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>>;
}
