//! Who may call what: identities (users with bcrypt passwords, bearer tokens stored as SHA-256
//! hashes), built-in roles, and the permission every route declares (`http::routes`).
//!
//! Without an `auth:` section every request is the `anonymous` identity with the `admin` role,
//! as before (medic then listens on loopback only unless told otherwise). With one, a request
//! without valid credentials gets 401, one whose role lacks the route's permission 403.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::serve::WebConfigWatch;

mod roles;
mod runtime_tokens;

pub use roles::{Grants, Permission, Role};
pub use runtime_tokens::{NewToken, RuntimeTokens};

/// `auth:` in medic.yml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Users for HTTP basic auth, by name: `{password_hash: <bcrypt>, role: sre}` (the hashes
    /// of Prometheus's `basic_auth_users`; `htpasswd -nbB user pass` makes one).
    #[serde(default)]
    pub users: BTreeMap<String, UserConfig>,
    /// Bearer tokens, by name: `{sha256: <hex of the token>, role: ingest}`; the token itself
    /// is never stored.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Custom roles, by name: `{permissions: [read, ack, heal_decide]}`. The built-in names
    /// (admin, sre, developer, viewer, ingest) cannot be redefined.
    #[serde(default)]
    pub roles: BTreeMap<String, CustomRole>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRole {
    /// Permission names: read, ingest, silence, ack, heal_trigger, heal_decide, heal_pause,
    /// audit, admin.
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// bcrypt hash; absent for a user whose password is in `--web.config.file`'s
    /// `basic_auth_users` (this entry then only gives the role).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A built-in role or one from `auth.roles`.
    pub role: String,
    /// Labels the user's acks, silences and repair triggers are limited to, as matchers:
    /// `'{service="checkout"}'`. Absent: all.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub sha256: String,
    pub role: String,
    /// As for users.
    #[serde(default)]
    pub scope: Option<String>,
}

impl AuthConfig {
    pub fn enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// The permissions of the role named `name`: a built-in one, else one of `auth.roles`.
    pub fn grants(&self, name: &str) -> Option<Grants> {
        if let Some(r) = Role::ALL.into_iter().find(|r| r.as_str() == name) {
            return Some(Grants::of(r));
        }
        let custom = self.roles.get(name)?;
        Some(
            custom
                .permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
        )
    }

    /// Whether an identity with `role` must have a scope: the developer role must.
    pub fn check_role_and_scope(&self, role: &str, scope: Option<&str>) -> Result<(), String> {
        if self.grants(role).is_none() {
            let custom: Vec<&str> = self.roles.keys().map(String::as_str).collect();
            return Err(format!(
                "role: unknown role {role:?} (built in: admin, sre, developer, viewer, ingest{}{})",
                if custom.is_empty() {
                    ""
                } else {
                    "; from auth.roles: "
                },
                custom.join(", ")
            ));
        }
        if let Some(s) = scope {
            Scope::parse(s).map_err(|e| format!("scope: {e}"))?;
        }
        if role == Role::Developer.as_str() && scope.is_none_or(|s| s.trim().is_empty()) {
            return Err(
                "the developer role needs a scope (the labels of its own services, e.g. scope: '{service=\"checkout\"}')"
                    .into(),
            );
        }
        Ok(())
    }

    /// Checks what can be checked at load: roles exist, custom roles name real permissions,
    /// bcrypt hashes parse, token hashes are 64 hex digits, scopes parse.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in &self.roles {
            if Role::ALL.iter().any(|b| b.as_str() == name) {
                return Err(format!(
                    "auth.roles.{name}: a built-in role; choose another name"
                ));
            }
            for p in &r.permissions {
                if Permission::parse(p).is_none_or(|p| p == Permission::Public) {
                    let all: Vec<&str> = Permission::ALL[1..].iter().map(|p| p.as_str()).collect();
                    return Err(format!(
                        "auth.roles.{name}.permissions: unknown permission {p:?} (one of {})",
                        all.join(", ")
                    ));
                }
            }
        }
        for (name, u) in &self.users {
            if let Some(hash) = &u.password_hash {
                hash.parse::<bcrypt::HashParts>()
                    // bcrypt's error quotes the value, which may be a password pasted by mistake.
                    .map_err(|_| format!("auth.users.{name}.password_hash: not a bcrypt hash (htpasswd -nbB user password makes one)"))?;
            }
            self.check_role_and_scope(&u.role, u.scope.as_deref())
                .map_err(|e| format!("auth.users.{name}.{e}"))?;
        }
        for (name, t) in &self.tokens {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "auth.tokens.{name}.sha256: expected 64 hex digits (sha256sum of the token)"
                ));
            }
            self.check_role_and_scope(&t.role, t.scope.as_deref())
                .map_err(|e| format!("auth.tokens.{name}.{e}"))?;
        }
        Ok(())
    }
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// The role's name (built-in or custom).
    pub role: String,
    pub grants: Grants,
    /// What its label-scoped permissions (ack, silence, trigger) reach.
    pub scope: Scope,
}

impl Identity {
    /// Everything, everywhere: the identity of every request when authentication is off.
    pub fn anonymous() -> Identity {
        Identity {
            name: "anonymous".into(),
            role: Role::Admin.as_str().into(),
            grants: Grants::of(Role::Admin),
            scope: Scope::default(),
        }
    }

    /// Whether the role grants `p` (whatever the labels).
    pub fn allows(&self, p: Permission) -> bool {
        self.grants.allows(p)
    }

    /// Whether the identity may do what needs `p` to something with these labels.
    pub fn may(&self, p: Permission, labels: &medic_model::Labels) -> bool {
        self.grants.allows(p) && (!p.label_scoped() || self.scope.covers(labels))
    }
}

/// The labels an identity's acks, silences and repair triggers are limited to, as matchers
/// (`{service="checkout"}`); no matchers: everything.
#[derive(Debug, Clone, Default)]
pub struct Scope(pub Vec<medic_model::Matcher>);

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Scope {}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&medic_alert::matchers::format_matchers(&self.0))
    }
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        medic_alert::matchers::parse_matchers(s).map(Scope)
    }

    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether labels fall inside the scope.
    pub fn covers(&self, labels: &medic_model::Labels) -> bool {
        medic_alert::matchers::matches_all(&self.0, labels)
    }

    /// Whether a silence with `matchers` can silence nothing outside the scope: each of the
    /// scope's matchers is among its own.
    pub fn bounds(&self, matchers: &[medic_model::Matcher]) -> bool {
        self.0.iter().all(|s| {
            matchers
                .iter()
                .any(|m| m.kind == s.kind && m.name == s.name && m.value == s.value)
        })
    }
}

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or wrong ones: 401.
    Unauthenticated,
    /// Known, but the role lacks the permission: 403.
    Forbidden { who: Identity, needs: Permission },
}

/// A configured scope (checked at load; one that no longer parses reaches nothing).
fn scope_of(s: &Option<String>) -> Scope {
    match s {
        None => Scope::default(),
        Some(s) => Scope::parse(s)
            .unwrap_or_else(|_| Scope(vec![medic_model::Matcher::equal("__nothing__", "\u{0}")])),
    }
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Checks credentials against the configuration. bcrypt is slow on purpose, so a password
/// that verified is remembered by its SHA-256 (in memory only) for the next requests.
pub struct Authenticator {
    config: AuthConfig,
    /// `--web.config.file`, whose `basic_auth_users` are users too.
    web: Option<Arc<WebConfigWatch>>,
    /// Tokens made at run time (`medic token create`).
    tokens: Option<RuntimeTokens>,
    verified: Mutex<HashMap<(String, String, String), bool>>,
}

impl Authenticator {
    pub fn new(config: AuthConfig, web: Option<Arc<WebConfigWatch>>) -> Self {
        Authenticator {
            config,
            web,
            tokens: None,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// With tokens made at run time, kept in `store`.
    pub fn with_tokens(mut self, tokens: RuntimeTokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The run-time token store, when there is one.
    pub fn runtime_tokens(&self) -> Option<&RuntimeTokens> {
        self.tokens.as_ref()
    }

    /// Whether requests must authenticate: users or tokens are configured (in `auth:` or the
    /// web config). Tokens made at run time count only then: creating one never locks out a
    /// medic that had no authentication.
    pub fn enabled(&self) -> bool {
        self.config.enabled()
            || self
                .web
                .as_ref()
                .is_some_and(|w| !w.current().users.is_empty())
    }

    fn identity(&self, name: &str, role: &str, scope: &Option<String>) -> Option<Identity> {
        Some(Identity {
            name: name.to_string(),
            role: role.to_string(),
            grants: self.config.grants(role)?,
            scope: scope_of(scope),
        })
    }

    /// The bcrypt hash and identity of `user`: from `auth.users`, else from the web config's
    /// `basic_auth_users` (with the role `auth.users` gives the name, or `admin`: a web-config
    /// user has full access in Prometheus too).
    fn user(&self, user: &str) -> Option<(String, Identity)> {
        let configured = self.config.users.get(user);
        let role = configured.map_or(Role::Admin.as_str(), |u| u.role.as_str());
        let id = self.identity(user, role, &configured.and_then(|u| u.scope.clone()))?;
        if let Some(hash) = configured.and_then(|u| u.password_hash.clone()) {
            return Some((hash, id));
        }
        let web = self.web.as_ref()?.current();
        let hash = web.users.get(user)?.clone();
        Some((hash, id))
    }

    fn bearer(&self, token: &str) -> Option<Identity> {
        let h = sha256_hex(token.trim().as_bytes());
        if let Some((name, t)) = self
            .config
            .tokens
            .iter()
            .find(|(_, t)| t.sha256.eq_ignore_ascii_case(&h))
        {
            return self.identity(name, &t.role, &t.scope);
        }
        let t = self.tokens.as_ref()?.find(&h)?;
        let scope = (!t.scope.is_empty()).then(|| t.scope.clone());
        self.identity(&t.name, &t.role, &scope)
    }

    /// The identity of a request with this `Authorization` header value.
    pub fn identify(&self, authorization: Option<&str>) -> Option<Identity> {
        if !self.enabled() {
            return Some(Identity::anonymous());
        }
        let value = authorization?.trim();
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.bearer(token);
        }
        let b64 = value.strip_prefix("Basic ")?;
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, pass) = raw.split_once(':')?;
        let (hash, id) = self.user(user)?;
        // Keyed by the hash too, so a changed password_hash takes effect at once.
        let key = (user.to_string(), hash.clone(), sha256_hex(pass.as_bytes()));
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        let ok = match cached {
            Some(ok) => ok,
            None => {
                let ok = bcrypt::verify(pass, &hash).unwrap_or(false);
                let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if v.len() > 10_000 {
                    v.clear();
                }
                v.insert(key, ok);
                ok
            }
        };
        ok.then_some(id)
    }

    /// Whether a request with this header may do what needs `p`; its identity if so.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        p: Permission,
    ) -> Result<Option<Identity>, Denied> {
        let id = self.identify(authorization);
        if p == Permission::Public {
            return Ok(id);
        }
        let id = id.ok_or(Denied::Unauthenticated)?;
        if id.allows(p) {
            Ok(Some(id))
        } else {
            Err(Denied::Forbidden { who: id, needs: p })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{user}:{pass}")
            )
        )
    }

    #[test]
    fn users_and_tokens_get_their_roles_and_nothing_else() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let cfg: AuthConfig = serde_norway::from_str(&format!(
            "users:\n  alice: {{password_hash: '{hash}', role: sre}}\ntokens:\n  prom: {{sha256: '{}', role: ingest}}\n",
            sha256_hex(b"t0ken")
        ))
        .unwrap();
        cfg.validate().unwrap();
        let a = Authenticator::new(cfg, None);
        let alice = a.identify(Some(&basic("alice", "pw"))).unwrap();
        assert_eq!(alice.role, "sre");
        // Cached the second time, same answer.
        assert_eq!(a.identify(Some(&basic("alice", "pw"))), Some(alice));
        assert_eq!(a.identify(Some(&basic("alice", "wrong"))), None);
        assert_eq!(a.identify(Some(&basic("bob", "pw"))), None);
        assert_eq!(a.identify(None), None);
        assert_eq!(
            a.identify(Some("Bearer t0ken")).map(|i| i.role),
            Some("ingest".to_string())
        );
        assert_eq!(a.identify(Some("Bearer nope")), None);
        assert_eq!(
            a.authorize(Some("Bearer t0ken"), Permission::Read),
            Err(Denied::Forbidden {
                who: Identity {
                    name: "prom".into(),
                    role: "ingest".into(),
                    grants: Grants::of(Role::Ingest),
                    scope: Scope::default(),
                },
                needs: Permission::Read
            })
        );
        assert_eq!(
            a.authorize(None, Permission::Read),
            Err(Denied::Unauthenticated)
        );
        assert!(a.authorize(None, Permission::Public).is_ok());
    }

    #[test]
    fn bad_hashes_are_refused_at_load() {
        let cfg: AuthConfig =
            serde_norway::from_str("users:\n  a: {password_hash: 'plain', role: admin}\n").unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .contains("auth.users.a.password_hash"));
        let cfg: AuthConfig =
            serde_norway::from_str("tokens:\n  t: {sha256: 'abc', role: admin}\n").unwrap();
        assert!(cfg.validate().unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn without_an_auth_section_everyone_is_admin() {
        let a = Authenticator::new(AuthConfig::default(), None);
        assert_eq!(
            a.authorize(None, Permission::Admin).unwrap().unwrap().name,
            "anonymous"
        );
    }

    #[test]
    fn custom_roles_grant_their_permissions_and_bad_ones_are_refused_at_load() {
        let cfg: AuthConfig = serde_norway::from_str(&format!(
            "roles:\n  lead: {{permissions: [read, heal_decide]}}\ntokens:\n  l: {{sha256: '{}', role: lead}}\n",
            sha256_hex(b"lead")
        ))
        .unwrap();
        cfg.validate().unwrap();
        let a = Authenticator::new(cfg, None);
        let id = a.identify(Some("Bearer lead")).unwrap();
        assert_eq!(id.role, "lead");
        assert!(a
            .authorize(Some("Bearer lead"), Permission::HealDecide)
            .is_ok());
        assert!(a
            .authorize(Some("Bearer lead"), Permission::HealTrigger)
            .is_err());

        for (yaml, error) in [
            ("roles:\n  sre: {permissions: [read]}\n", "auth.roles.sre: a built-in role"),
            ("roles:\n  x: {permissions: [reed]}\n", "unknown permission \"reed\""),
            (
                "users:\n  a: {password_hash: '$2y$04$abcdefghijklmnopqrstuu5Ql1VbmMvBBDd4FC5YDJmMGYh1lqPH2', role: boss}\n",
                "auth.users.a.role: unknown role \"boss\"",
            ),
        ] {
            let cfg: AuthConfig = serde_norway::from_str(yaml).unwrap();
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(error), "{yaml}: {e}");
        }
    }

    #[test]
    fn runtime_tokens_authenticate_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(medic_state::SqliteTokens::open(&dir.path().join("auth.db")).unwrap());
        let now = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
        let clock = now.clone();
        let tokens = RuntimeTokens::load(
            store.clone(),
            Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst)),
        )
        .unwrap();
        let cfg: AuthConfig = serde_norway::from_str(&format!(
            "tokens:\n  root: {{sha256: '{}', role: admin}}\n",
            sha256_hex(b"root")
        ))
        .unwrap();
        let a = Authenticator::new(cfg, None).with_tokens(tokens);
        let t = a.runtime_tokens().unwrap();
        let new = |name: &str, expires_at| NewToken {
            name: name.into(),
            role: "developer".into(),
            scope: "{service=\"checkout\"}".into(),
            expires_at,
        };
        let (row, secret) = t.create(new("dev", Some(5_000)), "root").unwrap();
        assert!(secret.starts_with("medic_") && secret.len() > 60);
        assert_ne!(row.sha256, secret, "only the hash is kept");
        let bearer = format!("Bearer {secret}");
        let id = a.identify(Some(&bearer)).unwrap();
        assert_eq!((id.name.as_str(), id.role.as_str()), ("dev", "developer"));
        assert_eq!(id.scope.to_string(), "{service=\"checkout\"}");
        // Expired: refused without any change to the store.
        now.store(5_000, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(a.identify(Some(&bearer)), None);

        let (_, other) = t.create(new("dev2", None), "root").unwrap();
        let bearer = format!("Bearer {other}");
        assert!(a.identify(Some(&bearer)).is_some());
        t.revoke("dev2", "root").unwrap();
        assert_eq!(a.identify(Some(&bearer)), None);
        // And after a restart, from the database alone.
        let again = RuntimeTokens::load(store, Arc::new(|| 1)).unwrap();
        assert!(again.find(&sha256_hex(other.as_bytes())).is_none());
        assert!(again.find(&row.sha256).is_some());
    }
}
