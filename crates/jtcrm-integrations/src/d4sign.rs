//! D4Sign electronic signature (REST API v1).
//!
//! - [`SignatureProvider`]: the provider-neutral e-signature trait the CRM codes against
//!   (upload, signers, send, status, cancel, download, webhook registration), with its types
//!   ([`Signer`], [`SignerAct`], [`DocumentStatus`], [`DocumentState`]) and error
//!   ([`SignError`]).
//! - [`Client`]: the real D4Sign API behind that trait ([`ClientConfig`] holds the base URL,
//!   `tokenAPI`, `cryptKey` and timeouts).
//! - [`webhook`]: pure functions for the postbacks D4Sign sends: [`verify_hmac`] of the
//!   `Content-Hmac` header and [`parse_postback`] of the form-encoded body.
//! - [`mock`]: a faithful local D4Sign (HTTP on a caller-given listener) for tests and trials.
//!
//! Facts relied on, quirks and unknowns: `docs/integrations/d4sign.md`.

mod client;
pub mod mock;
mod signature;
pub mod webhook;
mod wire;

pub use client::{Client, ClientConfig, PRODUCTION_BASE_URL, SANDBOX_BASE_URL, Safe};
pub use signature::{
    BoxFuture, DocumentState, DocumentStatus, SignError, SignatureProvider, Signer, SignerAct,
    SignerKey, SignerStatus,
};
pub use webhook::{
    HMAC_HEADER, Postback, PostbackError, PostbackKind, compute_hmac, parse_postback, verify_hmac,
};
