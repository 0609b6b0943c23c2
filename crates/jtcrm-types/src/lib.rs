//! Shared API vocabulary of jtcrm: request/response DTOs, Brazilian value types and error codes.
//! Pure data (serde + OpenAPI schemas); no I/O lives here.

pub mod br;
pub mod dto;
pub mod error;
pub mod money;

pub use error::{ErrorCode, FieldError, Problem};
