//! Read-only queries other domains may use: the period's quota targets of sellers.

pub use super::quotas::targets as quota_targets;
