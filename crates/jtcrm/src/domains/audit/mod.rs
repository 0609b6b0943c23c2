//! The audit log API (`/api/audit-logs`). Writing entries is the kernel's (`jtcrm_kernel::audit`).

pub mod routes;
