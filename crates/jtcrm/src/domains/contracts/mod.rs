//! Contracts: made from an accepted proposal or an opportunity, with the loyalty term
//! (fidelização), the early-termination fee rule, SLA and comodato equipment; frozen when sent
//! (PDF bytes in the file store, SHA-256), signed through a provider (`email_link` here; D4Sign
//! plugs into [`provider::Provider`]) or recorded as signed outside the system with evidence;
//! `signed` wins the deal; activated and cancelled with the fee computed. Events
//! `contract.sent|signed|activated|cancelled` go to the outbox and the timeline. See
//! docs/contracts.md.

pub mod document;
pub mod fee;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod provider;
pub mod public;
pub mod public_routes;
pub mod routes;
pub mod service;
pub mod signing;
