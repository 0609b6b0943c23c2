//! Secrets at rest: AES-256-GCM encryption of the credentials tenants give us (webhook signing
//! secrets today; PABX, D4Sign, FlyERP, WhatsApp and LLM credentials as those integrations land).
//!
//! A sealed value is the text `enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`, where the key
//! id is the first 8 hex digits of the SHA-256 of the key, so a value names the key that sealed it.
//! Keys come from the environment (`JTCRM_SECRETS_KEY`: 32 bytes as base64 or 64 hex digits;
//! development generates one in the data directory). **Rotation**: put the new key in
//! `JTCRM_SECRETS_KEY` and the previous one(s) in `JTCRM_SECRETS_OLD_KEYS` (comma-separated);
//! values sealed with an old key still open, every write seals with the current key, and
//! `jtcrm secrets rotate` re-seals every stored secret at once, after which the old keys can go.
//! Values that are not sealed (written before encryption existed) open as themselves and are
//! sealed on their next write or rotation. A sealed value is never returned by the API.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

const PREFIX: &str = "enc:v1:";

/// Parses a key given as base64 (44 characters) or hex (64 digits) into 32 bytes.
pub fn parse_key(s: &str) -> anyhow::Result<[u8; 32]> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(s)?
    } else {
        B64.decode(s)?
    };
    bytes.try_into().map_err(|_| {
        anyhow::anyhow!("a chave deve ter exatamente 32 bytes (base64 ou 64 dígitos hex)")
    })
}

/// A fresh random key, as base64 (what `JTCRM_SECRETS_KEY` expects).
pub fn generate_key() -> String {
    let key: [u8; 32] = rand::random();
    B64.encode(key)
}

fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Self {
        Key {
            id: key_id(bytes),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }
}

/// Seals and opens secrets with the current key (and opens with the old ones).
pub struct SecretBox {
    current: Key,
    old: Vec<Key>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current.id)
            .field("old", &self.old.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl SecretBox {
    pub fn new(current: &[u8; 32], old: &[[u8; 32]]) -> Self {
        SecretBox {
            current: Key::new(current),
            old: old.iter().map(Key::new).collect(),
        }
    }

    /// True when `value` is a sealed value (of any key).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// True when `value` is sealed with the current key (rotation skips it).
    pub fn is_current(&self, value: &str) -> bool {
        value
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current.id)
    }

    /// Encrypts `plain` with the current key and a random nonce.
    pub fn seal(&self, plain: &str) -> AppResult<String> {
        let nonce_bytes: [u8; 12] = rand::random();
        let ct = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce_bytes), plain.as_bytes())
            .map_err(|_| AppError::internal(anyhow::anyhow!("falha ao cifrar segredo")))?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}:{}", self.current.id, B64.encode(out)))
    }

    /// Decrypts a sealed value; a value that is not sealed is returned as it is (legacy rows).
    /// A value sealed with an unknown key, or tampered with, is an error (logged as internal).
    pub fn open(&self, value: &str) -> AppResult<String> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(value.to_string());
        };
        let fail = |why: &str| AppError::internal(anyhow::anyhow!("segredo ilegível: {why}"));
        let (kid, data) = rest.split_once(':').ok_or_else(|| fail("formato"))?;
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == kid)
            .ok_or_else(|| fail("chave desconhecida (veja JTCRM_SECRETS_OLD_KEYS)"))?;
        let raw = B64.decode(data).map_err(|_| fail("base64"))?;
        if raw.len() < 12 + 16 {
            return Err(fail("curto demais"));
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| fail("nonce"))?;
        let plain = key
            .cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| fail("autenticação"))?;
        String::from_utf8(plain).map_err(|_| fail("utf-8"))
    }

    /// Re-seals `value` with the current key when it is plaintext or sealed with an old key;
    /// `None` when it is already current.
    pub fn reseal(&self, value: &str) -> AppResult<Option<String>> {
        if self.is_current(value) {
            return Ok(None);
        }
        self.seal(&self.open(value)?).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_rotate_and_tamper() {
        let k1 = parse_key(&generate_key()).unwrap();
        let k2 = parse_key(&generate_key()).unwrap();
        let b1 = SecretBox::new(&k1, &[]);
        let sealed = b1.seal("segredo-do-webhook-123").unwrap();
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("segredo"));
        assert_ne!(
            sealed,
            b1.seal("segredo-do-webhook-123").unwrap(),
            "random nonce"
        );
        assert_eq!(b1.open(&sealed).unwrap(), "segredo-do-webhook-123");
        // Legacy plaintext opens as itself.
        assert_eq!(b1.open("antigo").unwrap(), "antigo");
        // Rotation: the new box opens the old value through its old key and reseals it.
        let b2 = SecretBox::new(&k2, &[k1]);
        assert_eq!(b2.open(&sealed).unwrap(), "segredo-do-webhook-123");
        let resealed = b2.reseal(&sealed).unwrap().unwrap();
        assert!(b2.is_current(&resealed));
        assert!(b2.reseal(&resealed).unwrap().is_none());
        // Without the old key the value cannot be opened.
        assert!(SecretBox::new(&k2, &[]).open(&sealed).is_err());
        // Tampering is detected.
        let mut bad = resealed.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert!(b2.open(&bad).is_err());
        // Keys in hex work too; a short key does not.
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key("c2hvcnQ=").is_err());
    }
}
