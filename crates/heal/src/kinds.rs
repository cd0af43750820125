//! The names the engine and its journal use, as enums: what started an execution, what kind
//! of step a journal line is, which guard vetoed, which event a notification reports. Each
//! is written in the journal and the APIs as its snake_case name.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! named {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

named!(
    /// What started an execution.
    TriggerKind {
        Alert = "alert",
        Condition = "condition",
        Manual = "manual",
    }
);

named!(
    /// What a line of an execution's timeline records.
    StepKind {
        Guard = "guard",
        Collect = "collect",
        Diagnose = "diagnose",
        Approval = "approval",
        Action = "action",
        Verify = "verify",
        Rollback = "rollback",
        Notify = "notify",
        Escalate = "escalate",
        Resume = "resume",
        Trust = "trust",
    }
);

named!(
    /// The guards and the other reasons an execution does not start.
    GuardName {
        Enabled = "enabled",
        Paused = "paused",
        CircuitBreaker = "circuit_breaker",
        Maintenance = "maintenance",
        Resolved = "resolved",
        Lock = "lock",
        Cooldown = "cooldown",
        RateLimit = "rate_limit",
        GlobalRateLimit = "global_rate_limit",
        BlastRadius = "blast_radius",
        /// A parameter's value failed its pattern.
        Params = "params",
        /// The playbook's templates could not be expanded (not a veto: a failure).
        Template = "template",
        /// A repair that did not hold (counts against the breaker).
        Recurrence = "recurrence",
        /// Every guard passed.
        All = "all",
    }
);

named!(
    /// What a notification about an execution reports.
    NotifyEvent {
        Started = "started",
        Success = "success",
        Failure = "failure",
        Approval = "approval",
        Vetoed = "vetoed",
        DryRun = "dry_run",
        /// A `notify` action's message.
        Action = "action",
        CircuitBreaker = "circuit_breaker",
        Trust = "trust",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for k in StepKind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(StepKind::parse(k.as_str()), Some(*k));
        }
        for g in GuardName::ALL {
            assert_eq!(GuardName::parse(&g.to_string()), Some(*g));
        }
        assert_eq!(
            serde_json::from_str::<NotifyEvent>("\"dry_run\"").unwrap(),
            NotifyEvent::DryRun
        );
        assert!(TriggerKind::parse("page").is_none());
    }
}
