//! Benchmark data for jtcrm, used only by the `jtcrm bench …` commands (see `bench/README.md`).
//! It lives outside the server library so that nothing in the product can call it, and so that
//! statements such as `DROP INDEX` during a bulk seed are never one import away from a request.
//!
//! - [`seed`]: `jtcrm bench seed`: one big tenant and a few smaller ones with realistic leads.
//! - [`sales`]: `jtcrm bench seed-sales`: opportunities, items, stage history and tasks on top.
//! - [`pdf`]: `jtcrm bench pdf`: proposal PDFs per second, p99 and peak RSS.
//! - [`telephony`]: `jtcrm bench telephony`: call-record ingestion rate, calls list and caller
//!   lookup latency.

pub mod pdf;
pub mod sales;
pub mod seed;
pub mod telephony;
