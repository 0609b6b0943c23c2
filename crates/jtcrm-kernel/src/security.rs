//! Password hashing (argon2id, off the async executor), HS256 access tokens and opaque refresh tokens.
//! Nothing here touches the database; the auth domain stores what these functions produce.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 256;

/// URL-safe random token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(s: &str) -> String {
    sha256_hex_bytes(s.as_bytes())
}

pub fn sha256_hex_bytes(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[derive(Clone)]
pub struct PasswordHasherCfg {
    memory_kib: u32,
    iterations: u32,
}

impl PasswordHasherCfg {
    pub fn new(memory_kib: u32, iterations: u32) -> Self {
        Self {
            memory_kib,
            iterations,
        }
    }

    fn argon(&self) -> AppResult<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None)
            .map_err(AppError::internal_msg)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    pub async fn hash(&self, password: String) -> AppResult<String> {
        let argon = self.argon()?;
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(AppError::internal_msg)?;
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(AppError::internal_msg)
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Verifies against a stored PHC string. A malformed hash counts as a mismatch.
    pub async fn verify(&self, password: String, hash: String) -> AppResult<bool> {
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(AppError::internal)
    }

    /// Burns the same CPU as a real verification so that unknown emails are not faster to reject.
    pub async fn dummy_verify(&self, password: String) -> AppResult<()> {
        let hash = self.hash(password.clone()).await?;
        let _ = self.verify(password, hash).await?;
        Ok(())
    }
}

impl AppError {
    pub fn internal_msg(e: impl std::fmt::Display) -> Self {
        AppError::internal(anyhow::anyhow!("{e}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// `None` for the platform super-admin.
    pub tenant_id: Option<Uuid>,
    pub role: String,
    pub jti: Uuid,
    /// Refresh-token family this access token belongs to; logout revokes it.
    pub sid: Uuid,
    pub iat: i64,
    /// Issue time in milliseconds, compared with per-user invalidation marks.
    pub iat_ms: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl_secs: i64,
}

impl JwtKeys {
    pub fn new(secret: &str, ttl_secs: i64) -> Self {
        // HS256 only: a token announcing any other algorithm (including `none`) is rejected.
        let mut validation = Validation::new(JwtAlg::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(
        &self,
        sub: Uuid,
        tenant_id: Option<Uuid>,
        role: &str,
        sid: Uuid,
    ) -> AppResult<(String, Claims)> {
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms / 1000;
        let claims = Claims {
            sub,
            tenant_id,
            role: role.to_string(),
            jti: Uuid::now_v7(),
            sid,
            iat: now,
            iat_ms: now_ms,
            exp: now + self.ttl_secs,
        };
        let token = jsonwebtoken::encode(&Header::new(JwtAlg::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok((token, claims))
    }

    pub fn decode(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

pub fn check_password_policy(field: &str, password: &str, v: &mut crate::error::Validator) {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        v.add(
            field,
            "too_short",
            "A senha deve ter pelo menos 8 caracteres",
        );
    } else if n > MAX_PASSWORD_LEN {
        v.add(
            field,
            "too_long",
            "A senha deve ter no máximo 256 caracteres",
        );
    }
}
