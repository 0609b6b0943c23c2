//! The object store the app uses for tenant files: the S3-compatible store of
//! `jtcrm_integrations::s3` when `JTCRM_S3_ENDPOINT` is set, otherwise the kernel's local store
//! under `<data dir>/files`. This adapter lives here, not in the kernel, because the kernel may
//! not depend on outbound clients (docs/architecture.md). See docs/files.md.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jtcrm_integrations::s3;
use jtcrm_kernel::config::Settings;
use jtcrm_kernel::files::{ObjectStore, SharedStore};
use jtcrm_kernel::tenancy::BoxFuture;

/// Seconds one S3 request may take (connect included).
const S3_TIMEOUT: Duration = Duration::from_secs(20);

/// The store the settings name: S3 when `JTCRM_S3_ENDPOINT` is set, local otherwise.
pub fn from_settings(settings: &Settings) -> anyhow::Result<SharedStore> {
    let Some(endpoint) = settings.s3_endpoint.clone() else {
        return Ok(jtcrm_kernel::files::from_settings(settings));
    };
    let missing = |name: &str| anyhow::anyhow!("JTCRM_S3_ENDPOINT exige {name}");
    let client = s3::Client::new(s3::S3Config {
        endpoint,
        bucket: settings
            .s3_bucket
            .clone()
            .ok_or_else(|| missing("JTCRM_S3_BUCKET"))?,
        region: settings.s3_region.clone(),
        access_key_id: settings
            .s3_access_key_id
            .clone()
            .ok_or_else(|| missing("JTCRM_S3_ACCESS_KEY_ID"))?,
        secret_access_key: settings
            .s3_secret_access_key
            .as_ref()
            .ok_or_else(|| missing("JTCRM_S3_SECRET_ACCESS_KEY"))?
            .expose()
            .to_string(),
        timeout: S3_TIMEOUT,
    })
    .context("armazenamento S3 (JTCRM_S3_*)")?;
    Ok(Arc::new(S3Store { client }))
}

/// [`ObjectStore`] over an S3 bucket.
pub struct S3Store {
    client: s3::Client,
}

/// An S3 failure as the store's I/O error: refused credentials are `PermissionDenied`, an
/// unreachable or slow server `ConnectionRefused`/`TimedOut`, a bad key `InvalidInput`.
fn io_error(e: s3::S3Error) -> io::Error {
    let kind = match &e {
        s3::S3Error::Config(_) => io::ErrorKind::InvalidInput,
        s3::S3Error::Transport(t) if t.is_timeout() => io::ErrorKind::TimedOut,
        s3::S3Error::Transport(t) if t.is_connect() => io::ErrorKind::ConnectionRefused,
        _ if e.is_auth() => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl ObjectStore for S3Store {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { self.client.put(key, bytes).await.map_err(io_error) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>> {
        Box::pin(async move { self.client.get(key).await.map_err(io_error) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { self.client.delete(key).await.map_err(io_error) })
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
