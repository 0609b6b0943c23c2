//! Outbound clients of the external systems jtcrm talks to, each behind a provider-neutral trait,
//! and a faithful local mock server of each (used by tests, `jtcrm system-test` and local trials).
//!
//! This crate knows nothing of tenants, the database or HTTP routing of the product: callers pass
//! credentials and base URLs in, and get typed results or a typed error out. Facts about each API
//! (shapes, quirks, error envelopes) are written in `docs/integrations/<system>.md`.
//!
//! Modules, one per external system:
//! - [`pabx`]: the JT Telecom cloud PABX ("suite" API): click-to-call, call history, extensions,
//!   call events.
//! - [`d4sign`]: D4Sign electronic signature.
//! - [`flyerp`]: FlyERP contract sync.
//! - [`llm`]: OpenAI-compatible chat completions with tool calls.
//! - [`whatsapp`]: WhatsApp Business Cloud API.
//! - [`s3`]: S3-compatible object storage (SigV4), where tenant files live when configured.
//! - [`smtp_mock`]: a local SMTP sink (the mock of an e-mail relay) with an HTTP view of what it
//!   received.

pub mod d4sign;
pub mod flyerp;
pub mod llm;
pub mod pabx;
pub mod s3;
pub mod smtp_mock;
pub mod whatsapp;
