//! Who may do what. Users come from `--user NAME=TOKEN` (read and write their namespace and their
//! orgs), `--read-user NAME=TOKEN` (read only) and `--org ORG=U1,U2` (membership). Orgs may be
//! nested (`--org acme/research=bob`, GitLab's subgroups): members of a group are members of all
//! its subgroups, and the parents of a declared group exist too. Tokens are compared as opaque
//! strings and never logged.

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
            crate::repo::check_namespace(org)?;
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

    /// True when `ns` is a known org: declared, or the parent of a declared subgroup.
    pub fn is_org(&self, ns: &str) -> bool {
        self.members.contains_key(ns) || {
            let prefix = format!("{ns}/");
            self.members.keys().any(|k| k.starts_with(&prefix))
        }
    }

    /// True when `ns` is a known user name.
    pub fn is_user(&self, ns: &str) -> bool {
        self.by_token.values().any(|p| p.name == ns)
    }

    /// True when `ns` is a known user or org name.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.is_org(ns) || self.is_user(ns)
    }

    /// Every user name, sorted.
    pub fn user_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_token.values().map(|p| p.name.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every org, declared or implied as the parent of a subgroup, sorted.
    pub fn org_names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for k in self.members.keys() {
            let mut path = k.as_str();
            v.push(path.to_string());
            while let Some((parent, _)) = path.rsplit_once('/') {
                v.push(parent.to_string());
                path = parent;
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// True when `p` acts for namespace `ns`: it is the user, or a member of the org or of one of
    /// its parent groups.
    pub fn belongs(&self, p: &Principal, ns: &str) -> bool {
        if p.name == ns {
            return true;
        }
        let mut path = ns;
        loop {
            if self.members.get(path).is_some_and(|m| m.contains(&p.name)) {
                return true;
            }
            match path.rsplit_once('/') {
                Some((parent, _)) => path = parent,
                None => return false,
            }
        }
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
    fn nested_groups_inherit_members() {
        let u = Users::from_flags(
            &["alice=ta".into(), "bob=tb".into()],
            &[],
            &["acme=alice".into(), "acme/research=bob".into()],
        )
        .unwrap();
        let (alice, bob) = (u.caller(Some("ta")), u.caller(Some("tb")));
        assert!(u.can_write(&alice, "acme/research") && u.can_write(&alice, "acme/research/deep"));
        assert!(u.can_write(&bob, "acme/research") && !u.can_write(&bob, "acme"));
        assert!(u.is_org("acme/research") && !u.is_org("acme/other") && !u.is_org("acm"));
        let implied = Users::from_flags(&[], &[], &["corp/ml=alice".into()]).unwrap();
        assert!(implied.is_org("corp") && implied.namespace_exists("corp/ml"));
        assert_eq!(implied.org_names(), ["corp", "corp/ml"]);
        assert!(Users::from_flags(&[], &[], &["acme//x=alice".into()]).is_err());
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(Users::from_flags(&["alice".into()], &[], &[]).is_err());
        assert!(Users::from_flags(&["a=t".into(), "b=t".into()], &[], &[]).is_err());
    }
}
