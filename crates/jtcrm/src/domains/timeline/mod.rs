//! The timeline domain: the feed of a lead or an opportunity over HTTP (after checking the subject is
//! visible to the caller) and notes. Entries themselves are written by every domain through
//! [`jtcrm_kernel::timeline`], in the transaction of its own change.

pub mod notes;
pub mod routes;
pub mod stats;
