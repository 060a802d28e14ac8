//! Who may do what. Users come from `--user NAME=TOKEN` (read and write their namespace and their
//! orgs), `--read-user NAME=TOKEN` (read only) and `--org ORG=U1,U2` (membership). Tokens are
//! compared as opaque strings and never logged.

use std::collections::{HashMap, HashSet};

/// The caller behind a valid token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub can_write: bool,
}

/// What the presented credentials amount to.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No credentials at all.
    Anonymous,
    /// A token that matches no user: the hubs answer 401 before anything else.
    Invalid,
    /// A known user.
    User(Principal),
}

impl Caller {
    /// The principal, for a valid token.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::User(p) => Some(p),
            _ => None,
        }
    }
}

/// The user and org table of one hubsim.
#[derive(Clone, Debug, Default)]
pub struct Users {
    by_token: HashMap<String, Principal>,
    members: HashMap<String, HashSet<String>>,
}

impl Users {
    /// Builds the table from the `NAME=TOKEN` and `ORG=U1,U2` flag values.
    pub fn from_flags(users: &[String], read_users: &[String], orgs: &[String]) -> Result<Self, String> {
        let mut t = Users::default();
        for (spec, can_write) in users
            .iter()
            .map(|s| (s, true))
            .chain(read_users.iter().map(|s| (s, false)))
        {
            let (name, token) = spec.split_once('=').ok_or_else(|| "a user is NAME=TOKEN".to_string())?;
            crate::repo::check_name(name)?;
            if token.is_empty() {
                return Err(format!("user {name}: empty token"));
            }
            if t.by_token
                .insert(
                    token.to_string(),
                    Principal {
                        name: name.to_string(),
                        can_write,
                    },
                )
                .is_some()
            {
                return Err(format!("user {name}: token given twice"));
            }
        }
        for spec in orgs {
            let (org, list) = spec
                .split_once('=')
                .ok_or_else(|| "an org is ORG=USER1,USER2".to_string())?;
            crate::repo::check_name(org)?;
            let set = t.members.entry(org.to_string()).or_default();
            set.extend(list.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }
        Ok(t)
    }

    /// Resolves a presented token (`None`: no credentials).
    pub fn caller(&self, token: Option<&str>) -> Caller {
        match token {
            None => Caller::Anonymous,
            Some(t) => match self.by_token.get(t) {
                Some(p) => Caller::User(p.clone()),
                None => Caller::Invalid,
            },
        }
    }

    /// The orgs `user` belongs to, sorted.
    pub fn orgs_of(&self, user: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.contains(user))
            .map(|(o, _)| o.clone())
            .collect();
        v.sort();
        v
    }

    /// True when `ns` is a known org.
    pub fn is_org(&self, ns: &str) -> bool {
        self.members.contains_key(ns)
    }

    /// True when `ns` is a known user or org name.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.is_org(ns) || self.by_token.values().any(|p| p.name == ns)
    }

    /// True when `p` acts for namespace `ns`: it is the user, or a member of the org.
    pub fn belongs(&self, p: &Principal, ns: &str) -> bool {
        p.name == ns || self.members.get(ns).is_some_and(|m| m.contains(&p.name))
    }

    /// May the caller read a repo in `ns` with this visibility?
    pub fn can_read(&self, caller: &Caller, ns: &str, private: bool) -> bool {
        if !private {
            return true;
        }
        caller.principal().is_some_and(|p| self.belongs(p, ns))
    }

    /// May the caller write to namespace `ns`?
    pub fn can_write(&self, caller: &Caller, ns: &str) -> bool {
        caller.principal().is_some_and(|p| p.can_write && self.belongs(p, ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Users {
        Users::from_flags(
            &["alice=ta".into(), "bob=tb".into()],
            &["carol=tc".into()],
            &["acme=alice,carol".into()],
        )
        .unwrap()
    }

    #[test]
    fn permissions() {
        let u = table();
        let alice = u.caller(Some("ta"));
        let bob = u.caller(Some("tb"));
        let carol = u.caller(Some("tc"));
        assert!(u.can_write(&alice, "alice") && u.can_write(&alice, "acme"));
        assert!(!u.can_write(&bob, "acme") && !u.can_write(&carol, "acme"));
        assert!(u.can_read(&carol, "acme", true) && !u.can_read(&bob, "acme", true));
        assert!(!u.can_read(&Caller::Anonymous, "acme", true));
        assert!(u.can_read(&Caller::Anonymous, "acme", false));
        assert!(matches!(u.caller(Some("nope")), Caller::Invalid));
        assert_eq!(u.orgs_of("alice"), vec!["acme".to_string()]);
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(Users::from_flags(&["alice".into()], &[], &[]).is_err());
        assert!(Users::from_flags(&["a=t".into(), "b=t".into()], &[], &[]).is_err());
    }
}
