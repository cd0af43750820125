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

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Anyone, authenticated or not: health, readiness, medic's own metrics.
    Public,
    /// Read data, alerts, rules, executions, status.
    Read,
    /// Send samples and alerts in (remote write, API v2 alerts, webhook and CloudWatch sources).
    Ingest,
    /// Create and expire silences.
    Silence,
    /// Acknowledge alert groups.
    Ack,
    /// Start a playbook by hand, preview one (dry run).
    HealTrigger,
    /// Approve or reject a proposed action.
    HealDecide,
    /// Pause and resume automatic repair.
    HealPause,
    /// Read the audit log.
    Audit,
    /// Reload the configuration, flush the store.
    Admin,
}

impl Permission {
    /// Permissions an identity's `scope` limits to the labels it covers.
    pub fn label_scoped(self) -> bool {
        matches!(
            self,
            Permission::Ack | Permission::Silence | Permission::HealTrigger
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Read => "read",
            Permission::Ingest => "ingest",
            Permission::Silence => "silence",
            Permission::Ack => "ack",
            Permission::HealTrigger => "heal_trigger",
            Permission::HealDecide => "heal_decide",
            Permission::HealPause => "heal_pause",
            Permission::Audit => "audit",
            Permission::Admin => "admin",
        }
    }
}

/// The built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything; alerts, silences, acks; trigger, approve, reject, pause, resume
    /// repairs; the audit log.
    Sre,
    /// Read; acknowledge, silence and trigger repairs.
    Developer,
    /// Read only.
    Viewer,
    /// Machines: remote write and alerts in.
    Ingest,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Sre,
        Role::Developer,
        Role::Viewer,
        Role::Ingest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sre => "sre",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Whether the role grants `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Sre => p != P::Admin,
            Role::Developer => matches!(
                p,
                P::Public | P::Read | P::Ack | P::Silence | P::HealTrigger
            ),
            Role::Viewer => matches!(p, P::Public | P::Read),
            Role::Ingest => matches!(p, P::Public | P::Ingest),
        }
    }
}

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// bcrypt hash; absent for a user whose password is in `--web.config.file`'s
    /// `basic_auth_users` (this entry then only gives the role).
    #[serde(default)]
    pub password_hash: Option<String>,
    pub role: Role,
    /// Labels the user's acks, silences and repair triggers are limited to, as matchers:
    /// `'{service="checkout"}'`. Absent: all.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub sha256: String,
    pub role: Role,
    /// As for users.
    #[serde(default)]
    pub scope: Option<String>,
}

impl AuthConfig {
    pub fn enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Checks what can be checked at load: bcrypt hashes parse, token hashes are 64 hex
    /// digits.
    pub fn validate(&self) -> Result<(), String> {
        for (name, u) in &self.users {
            let Some(hash) = &u.password_hash else {
                continue;
            };
            hash.parse::<bcrypt::HashParts>()
                // bcrypt's error quotes the value, which may be a password pasted by mistake.
                .map_err(|_| format!("auth.users.{name}.password_hash: not a bcrypt hash (htpasswd -nbB user password makes one)"))?;
        }
        for (kind, name, scope) in self
            .users
            .iter()
            .map(|(n, u)| ("users", n, &u.scope))
            .chain(self.tokens.iter().map(|(n, t)| ("tokens", n, &t.scope)))
        {
            if let Some(s) = scope {
                Scope::parse(s).map_err(|e| format!("auth.{kind}.{name}.scope: {e}"))?;
            }
            let role = match kind {
                "users" => self.users[name].role,
                _ => self.tokens[name].role,
            };
            if role == Role::Developer && scope.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(format!(
                    "auth.{kind}.{name}: the developer role needs a scope (the labels of its own services, e.g. scope: '{{service=\"checkout\"}}')"
                ));
            }
        }
        for (name, t) in &self.tokens {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "auth.tokens.{name}.sha256: expected 64 hex digits (sha256sum of the token)"
                ));
            }
        }
        Ok(())
    }
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    /// What its label-scoped permissions (ack, silence, trigger) reach.
    pub scope: Scope,
}

impl Identity {
    /// Whether the identity may do what needs `p` to something with these labels.
    pub fn may(&self, p: Permission, labels: &medic_model::Labels) -> bool {
        self.role.allows(p) && (!p.label_scoped() || self.scope.covers(labels))
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

fn sha256_hex(b: &[u8]) -> String {
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
    verified: Mutex<HashMap<(String, String, String), bool>>,
}

impl Authenticator {
    pub fn new(config: AuthConfig, web: Option<Arc<WebConfigWatch>>) -> Self {
        Authenticator {
            config,
            web,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled()
            || self
                .web
                .as_ref()
                .is_some_and(|w| !w.current().users.is_empty())
    }

    /// The bcrypt hash and role of `user`: from `auth.users`, else from the web config's
    /// `basic_auth_users` (with the role `auth.users` gives the name, or `admin`: a web-config
    /// user has full access in Prometheus too).
    fn user(&self, user: &str) -> Option<(String, Role, Scope)> {
        let configured = self.config.users.get(user);
        let role = configured.map_or(Role::Admin, |u| u.role);
        let scope = scope_of(&configured.and_then(|u| u.scope.clone()));
        if let Some(hash) = configured.and_then(|u| u.password_hash.clone()) {
            return Some((hash, role, scope));
        }
        let web = self.web.as_ref()?.current();
        let hash = web.users.get(user)?.clone();
        Some((hash, role, scope))
    }

    /// The identity of a request with this `Authorization` header value.
    pub fn identify(&self, authorization: Option<&str>) -> Option<Identity> {
        if !self.enabled() {
            return Some(Identity {
                name: "anonymous".into(),
                role: Role::Admin,
                scope: Scope::default(),
            });
        }
        let value = authorization?.trim();
        if let Some(token) = value.strip_prefix("Bearer ") {
            let h = sha256_hex(token.trim().as_bytes());
            return self
                .config
                .tokens
                .iter()
                .find(|(_, t)| t.sha256.eq_ignore_ascii_case(&h))
                .map(|(name, t)| Identity {
                    name: name.clone(),
                    role: t.role,
                    scope: scope_of(&t.scope),
                });
        }
        let b64 = value.strip_prefix("Basic ")?;
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, pass) = raw.split_once(':')?;
        let (hash, role, scope) = self.user(user)?;
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
        ok.then(|| Identity {
            name: user.to_string(),
            role,
            scope,
        })
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
        if id.role.allows(p) {
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
        assert_eq!(alice.role, Role::Sre);
        // Cached the second time, same answer.
        assert_eq!(a.identify(Some(&basic("alice", "pw"))), Some(alice));
        assert_eq!(a.identify(Some(&basic("alice", "wrong"))), None);
        assert_eq!(a.identify(Some(&basic("bob", "pw"))), None);
        assert_eq!(a.identify(None), None);
        assert_eq!(
            a.identify(Some("Bearer t0ken")).map(|i| i.role),
            Some(Role::Ingest)
        );
        assert_eq!(a.identify(Some("Bearer nope")), None);
        assert_eq!(
            a.authorize(Some("Bearer t0ken"), Permission::Read),
            Err(Denied::Forbidden {
                who: Identity {
                    name: "prom".into(),
                    role: Role::Ingest,
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
}
