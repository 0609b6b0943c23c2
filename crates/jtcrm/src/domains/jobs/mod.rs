//! The job queue's admin API (`/api/jobs`): list, inspect and retry jobs. The queue itself is the
//! kernel's (`jtcrm_kernel::jobs`).

pub mod routes;
