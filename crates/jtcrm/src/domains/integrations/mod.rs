//! Per-tenant integration settings, one generic mechanism for every external system: a provider
//! key, a JSON configuration validated by the provider's rules, secret fields sealed at rest with
//! the kernel's `secrets` (AES-256-GCM) and never returned, a webhook token (only its hash is
//! stored) and the provider's sync state. Today's provider is `pabx` (telephony); D4Sign, FlyERP
//! and WhatsApp plug in the same way (a variant of `IntegrationProvider`, a config module, their
//! secret fields). See docs/telephony.md.

#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod pabx;
pub mod routes;
pub mod service;

pub use service::{Loaded, enabled_tenants, load, load_enabled, save_sync_state};
