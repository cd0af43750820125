//! Bearer tokens made at run time: `medic token create` / `POST /api/v1/medic/tokens` makes one
//! and shows it once; only its SHA-256 is stored (`auth.db` in the storage directory), with its
//! role, scope, expiry and maker. Lookups are served from memory; every change goes to the
//! database first.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use medic_state::{StoredToken, TokenError, TokenStore};

use super::sha256_hex;

/// What a new token is to be.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    /// Matchers (`{service="checkout"}`); empty: all.
    pub scope: String,
    /// Unix ms; `None`: never.
    pub expires_at: Option<i64>,
}

/// The store and its in-memory index by hash.
pub struct RuntimeTokens {
    store: Arc<dyn TokenStore>,
    by_hash: RwLock<HashMap<String, StoredToken>>,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl RuntimeTokens {
    /// Loads the live tokens of `store`; `now` gives Unix ms (the clock, passed in for tests).
    pub fn load(
        store: Arc<dyn TokenStore>,
        now: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Self, TokenError> {
        let t = RuntimeTokens {
            store,
            by_hash: RwLock::new(HashMap::new()),
            now,
        };
        t.refresh()?;
        Ok(t)
    }

    fn refresh(&self) -> Result<(), TokenError> {
        let now = (self.now)();
        let live: HashMap<String, StoredToken> = self
            .store
            .list()?
            .into_iter()
            .filter(|t| t.live(now))
            .map(|t| (t.sha256.clone(), t))
            .collect();
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = live;
        Ok(())
    }

    /// The live token with this SHA-256 (hex), if any.
    pub fn find(&self, sha256: &str) -> Option<StoredToken> {
        let t = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
            .cloned()?;
        t.live((self.now)()).then_some(t)
    }

    /// Makes a token: the stored row and the token itself (shown once, never stored).
    pub fn create(&self, new: NewToken, by: &str) -> Result<(StoredToken, String), TokenError> {
        let secret = format!(
            "medic_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let row = StoredToken {
            id: uuid::Uuid::new_v4().to_string(),
            name: new.name,
            sha256: sha256_hex(secret.as_bytes()),
            role: new.role,
            scope: new.scope,
            created_by: by.to_string(),
            created_at: (self.now)(),
            expires_at: new.expires_at,
            revoked_at: None,
            revoked_by: None,
        };
        self.store.insert(&row)?;
        self.refresh()?;
        Ok((row, secret))
    }

    /// Every token made at run time, revoked and expired ones too.
    pub fn list(&self) -> Result<Vec<StoredToken>, TokenError> {
        self.store.list()
    }

    /// Revokes the live token with this id or name: it stops authenticating at once.
    pub fn revoke(&self, id_or_name: &str, by: &str) -> Result<StoredToken, TokenError> {
        let t = self.store.revoke(id_or_name, by, (self.now)())?;
        self.refresh()?;
        Ok(t)
    }
}
