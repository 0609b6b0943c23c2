//! Where file bytes live: generated PDFs, signature evidence, tenant logos, call recordings.
//!
//! [`ObjectStore`] is the storage interface; [`LocalStore`] (the default) keeps objects under
//! `<data dir>/files/`; the app uses an S3-compatible store instead when `JTCRM_S3_ENDPOINT` is
//! set (`jtcrm::storage`, docs/files.md). Keys are chosen by the caller and always start with the tenant's id
//! (`<tenant>/<kind>/<file id>`), so one tenant's objects never share a prefix with another's.
//! Objects are never served from a public path: a domain checks the caller's rights and streams
//! the bytes through its own authenticated endpoint. The metadata (name, type, size, SHA-256,
//! owner) is the `files` table's, kept by the `files` domain.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::tenancy::BoxFuture;

/// A store of immutable objects addressed by key.
pub trait ObjectStore: Send + Sync {
    /// Writes the object (replacing one with the same key) durably before returning.
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>>;
    /// The object's bytes; `None` when there is no such object.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>>;
    /// Removes the object; removing a missing object is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<()>>;
    /// A short name for logs (`local`, `s3`).
    fn kind(&self) -> &'static str;
    /// Whether the store answers (for `/health`): reads a key that is never written.
    fn ping(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.get("_health/probe").await.is_ok() })
    }
}

pub type SharedStore = Arc<dyn ObjectStore>;

/// Objects as files under a root directory. A write goes to a temporary file that is synced and
/// then renamed, so a reader never sees half an object.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The path of a key, refusing anything that could leave the root (`..`, absolute paths,
    /// empty segments, characters outside `[A-Za-z0-9._-]`).
    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        let ok = !key.is_empty()
            && key.len() <= 300
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if !ok {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid object key: {key:?}"),
            ));
        }
        Ok(self.root.join(Path::new(key)))
    }
}

impl ObjectStore for LocalStore {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
            let mut f = tokio::fs::File::create(&tmp).await?;
            use tokio::io::AsyncWriteExt;
            let res = async {
                f.write_all(bytes).await?;
                f.sync_all().await?;
                tokio::fs::rename(&tmp, &path).await
            }
            .await;
            if res.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            res
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)?).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

/// The local store of the settings: the filesystem under `<data dir>/files`. (The S3-compatible
/// store, used when `JTCRM_S3_ENDPOINT` is set, is an adapter over `jtcrm-integrations` that the
/// app assembly chooses: the kernel does not depend on outbound clients.)
pub fn from_settings(settings: &crate::config::Settings) -> SharedStore {
    Arc::new(LocalStore::new(settings.data_dir.join("files")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trip_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("jtcrm-files-{}", uuid::Uuid::new_v4()));
        let s = LocalStore::new(&dir);
        s.put("t1/pdf/a.pdf", b"hello").await.unwrap();
        assert_eq!(
            s.get("t1/pdf/a.pdf").await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        s.put("t1/pdf/a.pdf", b"again").await.unwrap();
        assert_eq!(
            s.get("t1/pdf/a.pdf").await.unwrap().as_deref(),
            Some(&b"again"[..])
        );
        assert!(s.get("t1/pdf/missing").await.unwrap().is_none());
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a b", ""] {
            assert!(s.put(bad, b"x").await.is_err(), "{bad}");
        }
        s.delete("t1/pdf/a.pdf").await.unwrap();
        s.delete("t1/pdf/a.pdf").await.unwrap();
        assert!(s.get("t1/pdf/a.pdf").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
