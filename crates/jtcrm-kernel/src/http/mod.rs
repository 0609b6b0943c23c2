//! The request side of the kernel: context and guards ([`extract`]), list pagination
//! ([`pagination`]) and `Idempotency-Key` handling ([`idempotency`]).

pub mod extract;
pub mod idempotency;
pub mod pagination;
