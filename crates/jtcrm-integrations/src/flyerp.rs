//! FlyERP contract sync.
//!
//! - [`ErpProvider`]: the provider-neutral ERP trait the CRM codes against: create a recurring
//!   contract (with its customer inline) idempotently by the CRM contract number, look one up
//!   by that number, check credentials. Its input is [`ContractSync`] ([`Customer`],
//!   [`ContractService`]); its error is [`ErpError`].
//! - [`Client`]: FlyERP's `https://{empresa}.flyerp.com.br/apis/{Acao}` API behind that trait
//!   ([`ClientConfig`]).
//! - [`mock`]: a faithful local FlyERP for tests and trials.
//!
//! Facts relied on, quirks and unknowns: `docs/integrations/flyerp.md`.

mod client;
mod erp;
pub mod mock;

pub use client::{Client, ClientConfig, contract_body, normalize_tax_id};
pub use erp::{
    BoxFuture, ContractService, ContractSync, Customer, ErpContractRef, ErpError, ErpProvider,
};
