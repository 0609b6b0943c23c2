//! Operational endpoints: `/health` (database, Redis, external APIs) and `/metrics` (Prometheus).

pub mod routes;
