//! The request side of the kernel: context and extractors ([`extract`]), role guards ([`guard`]),
//! list pagination ([`pagination`]) and `Idempotency-Key` handling ([`idempotency`]).

pub mod extract;
pub mod guard;
pub mod idempotency;
pub mod pagination;
