//! Permissions, the built-in roles, and the set of permissions a role grants (custom roles
//! from `auth.roles` are sets of permissions too).

use serde::Deserialize;

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

    pub const ALL: [Permission; 10] = [
        Permission::Public,
        Permission::Read,
        Permission::Ingest,
        Permission::Silence,
        Permission::Ack,
        Permission::HealTrigger,
        Permission::HealDecide,
        Permission::HealPause,
        Permission::Audit,
        Permission::Admin,
    ];

    /// The permission named `s` (`read`, `heal_trigger`, …).
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
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

/// The permissions an identity holds: a built-in role's, or a custom role's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants(u16);

impl Grants {
    pub fn of(role: Role) -> Grants {
        Permission::ALL
            .into_iter()
            .filter(|p| role.allows(*p))
            .collect()
    }

    /// Whether `p` is granted; `public` always is.
    pub fn allows(self, p: Permission) -> bool {
        p == Permission::Public || self.0 & (1 << p as u16) != 0
    }
}

impl FromIterator<Permission> for Grants {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Grants(iter.into_iter().fold(0, |g, p| g | (1 << p as u16)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_hold_exactly_the_roles_permissions() {
        for role in Role::ALL {
            let g = Grants::of(role);
            for p in Permission::ALL {
                assert_eq!(g.allows(p), role.allows(p), "{role:?} {p:?}");
            }
        }
        let custom: Grants = [Permission::Read, Permission::HealDecide]
            .into_iter()
            .collect();
        assert!(custom.allows(Permission::HealDecide) && custom.allows(Permission::Public));
        assert!(!custom.allows(Permission::HealTrigger));
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }
}
