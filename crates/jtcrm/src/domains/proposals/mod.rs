//! Proposals and document templates: templates (proposals and contracts, minijinja with pt-BR
//! filters, checked at save), proposals made from an opportunity, numbered per tenant and year,
//! versioned once sent, e-mailed with a public link the customer opens, accepts or rejects, and
//! the PDF (krilla). Events `proposal.sent|viewed|accepted|rejected` go to the outbox and the
//! timeline of the lead and the opportunity. See docs/proposals.md.

pub mod defaults;
pub mod documents;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod pdf;
pub mod public;
pub mod public_routes;
pub mod render;
pub mod routes;
pub mod send;
pub mod service;
pub mod stats;
pub mod templates;
pub mod words;

pub use templates::seed_tenant;
