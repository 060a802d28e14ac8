//! Repository references as users write them: `hf:org/name`, `hf:datasets/org/name`,
//! `ms:org/name`, full URLs (`https://huggingface.co/datasets/o/n`,
//! `https://modelscope.cn/models/o/n`), and the `--to ms` shorthand (same id, other hub).

use std::fmt;

use crate::error::{Error, Result};
use crate::redact::Secret;

/// Which hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Hugging Face Hub (or any HF-compatible hub).
    Hf,
    /// ModelScope.
    Ms,
    /// A Git LFS host (GitLab, Gitea, OpenXlab, self-hosted), addressed by URL.
    Git,
}

impl Platform {
    /// `hf` or `ms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Hf => "hf",
            Platform::Ms => "ms",
            Platform::Git => "git",
        }
    }

    /// Parses `hf`/`ms` (also `huggingface`, `modelscope`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "hf" | "huggingface" => Ok(Platform::Hf),
            "ms" | "modelscope" => Ok(Platform::Ms),
            "git" => Ok(Platform::Git),
            other => Err(Error::Input(format!("unknown hub {other:?}: use hf, ms or git"))),
        }
    }

    /// The environment variable holding this hub's token, as its own clients name it (a git
    /// host's: `TARGET_TOKEN`, the transfer tools' name for the destination's token).
    pub fn token_var(self) -> &'static str {
        match self {
            Platform::Hf => "HF_TOKEN",
            Platform::Ms => "MODELSCOPE_TOKEN",
            Platform::Git => "TARGET_TOKEN",
        }
    }

    /// The environment variable holding this hub's base URL, where its clients read one.
    pub fn endpoint_var(self) -> Option<&'static str> {
        match self {
            Platform::Hf => Some("HF_ENDPOINT"),
            Platform::Ms => Some("MODELSCOPE_ENDPOINT"),
            Platform::Git => None,
        }
    }

    /// The public hub's own host names: only these (and hosts the user named for the platform)
    /// are recognised as the hub in a URL; a host that merely contains the hub's name is not it.
    pub fn public_hosts(self) -> &'static [&'static str] {
        match self {
            Platform::Hf => &["huggingface.co", "www.huggingface.co", "hf.co"],
            Platform::Ms => &[
                "modelscope.cn",
                "www.modelscope.cn",
                "modelscope.ai",
                "www.modelscope.ai",
            ],
            Platform::Git => &[],
        }
    }

    /// The public hub's base URL.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Platform::Hf => "https://huggingface.co",
            Platform::Ms => "https://modelscope.cn",
            // Git hosts are always named by URL.
            Platform::Git => "",
        }
    }
}

/// Model, dataset or space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoType {
    Model,
    Dataset,
    Space,
}

impl RepoType {
    /// `model`, `dataset`, `space`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }

    /// `models`, `datasets`, `spaces`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }

    /// Parses a singular or plural name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "model" | "models" => Ok(RepoType::Model),
            "dataset" | "datasets" => Ok(RepoType::Dataset),
            "space" | "spaces" => Ok(RepoType::Space),
            other => Err(Error::Input(format!(
                "unknown repo type {other:?}: use model, dataset or space"
            ))),
        }
    }
}

/// A repository on a hub: platform, type, `namespace/name`, and the base URL if the reference
/// named one (a full URL); otherwise the endpoint comes from the environment or the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRef {
    pub platform: Platform,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    /// Whether the type was given explicitly (`datasets/`, a URL): `--repo-type` does not override it.
    pub explicit_type: bool,
    /// The base URL from a full URL reference.
    pub endpoint: Option<String>,
    /// `user:token` given inside a git URL (never shown).
    pub credentials: Option<(String, Secret)>,
}

impl RepoRef {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Parses a reference; `default_type` applies when the reference does not say.
    pub fn parse(text: &str, default_type: RepoType) -> Result<Self> {
        Self::parse_with(text, default_type, &[])
    }

    /// [`RepoRef::parse`], where a URL on one of `hosts` (`host[:port]`, e.g. that of
    /// `HF_ENDPOINT`) also names that platform's hub.
    pub fn parse_with(text: &str, default_type: RepoType, hosts: &[(Platform, String)]) -> Result<Self> {
        let t = text.trim();
        if let Some(url) = t.strip_prefix("git:").or_else(|| t.strip_prefix("git+")) {
            return Self::parse_git_url(url);
        }
        if let Some(rest) = t.strip_prefix("https://").or_else(|| t.strip_prefix("http://")) {
            return Self::parse_url(t, rest, default_type, hosts);
        }
        let (platform, rest) = t.split_once(':').ok_or_else(|| {
            Error::Input(format!(
                "invalid repo {t:?}: write hf:NAMESPACE/NAME, ms:NAMESPACE/NAME or a full URL"
            ))
        })?;
        let platform = Platform::parse(platform)?;
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let (repo_type, explicit, ns, name) = match parts.as_slice() {
            [ns, name] => (default_type, false, *ns, *name),
            [kind, ns, name] => (RepoType::parse(kind)?, true, *ns, *name),
            _ => {
                return Err(Error::Input(format!("invalid repo {t:?}: expected NAMESPACE/NAME")));
            }
        };
        Self::build(platform, repo_type, explicit, ns, name, None)
    }

    fn parse_url(full: &str, rest: &str, default_type: RepoType, hosts: &[(Platform, String)]) -> Result<Self> {
        let scheme = if full.starts_with("https://") { "https" } else { "http" };
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| Error::Input(format!("invalid repo URL {}", crate::redact::url(full))))?;
        let bare = host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
        let hub = [Platform::Hf, Platform::Ms].into_iter().find(|p| {
            p.public_hosts().contains(&bare.as_str())
                || hosts
                    .iter()
                    .any(|(known, h)| known == p && h.eq_ignore_ascii_case(&bare))
        });
        if hub.is_none() && path.trim_end_matches('/').ends_with(".git") {
            return Self::parse_git_url(full);
        }
        if host.contains('@') {
            return Err(Error::Input(
                "credentials in a hub URL are not supported: use HF_TOKEN or MODELSCOPE_TOKEN".into(),
            ));
        }
        let platform = if let Some(p) = hub {
            p
        } else {
            return Err(Error::Input(format!(
                "cannot tell which hub {bare} is: use hf:NAMESPACE/NAME or ms:NAMESPACE/NAME with --source-endpoint/--dest-endpoint, or a git URL ending in .git (or prefixed git:) for a Git LFS host"
            )));
        };
        let parts: Vec<&str> = path.trim_end_matches(".git").trim_matches('/').split('/').collect();
        let (repo_type, explicit, ns, name) = match (platform, parts.as_slice()) {
            (_, [kind @ ("datasets" | "spaces" | "models"), ns, name, ..]) => {
                (RepoType::parse(kind)?, true, *ns, *name)
            }
            (Platform::Hf, [ns, name, ..]) => (RepoType::Model, default_type == RepoType::Model, *ns, *name),
            _ => {
                return Err(Error::Input(format!(
                    "invalid repo URL {full:?}: expected .../NAMESPACE/NAME"
                )));
            }
        };
        let repo_type = if explicit { repo_type } else { default_type };
        Self::build(
            platform,
            repo_type,
            explicit,
            ns,
            name,
            Some(format!("{scheme}://{host}")),
        )
    }

    /// A Git LFS host's project URL: `http(s)://[user[:token]@]host[:port]/group/sub/project[.git]`.
    fn parse_git_url(full: &str) -> Result<Self> {
        let (scheme, rest) = full
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| Error::Input("a git host is named by an http(s):// URL".into()))?;
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| Error::Input(format!("invalid git URL {}: no project path", crate::redact::url(full))))?;
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (user, token) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                let token = (!token.is_empty()).then(|| Secret::new(decode(token)));
                (token.map(|t| (decode(user), t)), host)
            }
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(Error::Input("invalid git URL: no host".into()));
        }
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let (ns, name) = path.rsplit_once('/').ok_or_else(|| {
            Error::Input(format!(
                "invalid git URL {}: expected .../GROUP/PROJECT.git",
                crate::redact::url(full)
            ))
        })?;
        for part in ns.split('/') {
            check_part(part)?;
        }
        let mut r = Self::build(
            Platform::Git,
            RepoType::Model,
            false,
            ns.split('/').next().unwrap_or(""),
            name,
            Some(format!("{scheme}://{host}")),
        )?;
        r.namespace = ns.to_string();
        r.credentials = credentials;
        Ok(r)
    }

    fn build(
        platform: Platform,
        repo_type: RepoType,
        explicit: bool,
        ns: &str,
        name: &str,
        endpoint: Option<String>,
    ) -> Result<Self> {
        for part in [ns, name] {
            check_part(part)?;
        }
        if platform == Platform::Ms && repo_type == RepoType::Space {
            return Err(Error::Input(
                "ModelScope has no spaces to migrate files to or from (studios are git-only)".into(),
            ));
        }
        Ok(RepoRef {
            platform,
            repo_type,
            namespace: ns.into(),
            name: name.into(),
            explicit_type: explicit,
            endpoint,
            credentials: None,
        })
    }

    /// The same repo id on another hub (`--to ms`), keeping the type.
    pub fn on(&self, platform: Platform) -> Self {
        RepoRef {
            platform,
            endpoint: None,
            ..self.clone()
        }
    }

    /// With another type, unless the reference fixed its type itself.
    pub fn with_default_type(mut self, t: RepoType) -> Self {
        if !self.explicit_type {
            self.repo_type = t;
        }
        self
    }
}

fn check_part(part: &str) -> Result<()> {
    let ok = !part.is_empty()
        && part.len() <= 96
        && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !part.starts_with(['.', '-'])
        && !part.contains("..");
    if !ok {
        return Err(Error::Input(format!(
            "invalid repo name {part:?}: use letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.platform == Platform::Git {
            return write!(f, "{}/{}.git", self.endpoint.as_deref().unwrap_or("git:"), self.id());
        }
        match self.repo_type {
            RepoType::Model => write!(f, "{}:{}", self.platform.as_str(), self.id()),
            t => write!(f, "{}:{}/{}", self.platform.as_str(), t.plural(), self.id()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<RepoRef> {
        RepoRef::parse(s, RepoType::Model)
    }

    #[test]
    fn short_forms() {
        let r = p("hf:org/model-1").unwrap();
        assert_eq!(
            (r.platform, r.repo_type, r.id().as_str()),
            (Platform::Hf, RepoType::Model, "org/model-1")
        );
        let d = p("hf:datasets/org/d").unwrap();
        assert_eq!(d.repo_type, RepoType::Dataset);
        assert!(d.explicit_type);
        assert_eq!(d.to_string(), "hf:datasets/org/d");
        assert_eq!(
            RepoRef::parse("ms:o/n", RepoType::Dataset).unwrap().repo_type,
            RepoType::Dataset
        );
        assert_eq!(p("hf:org/m").unwrap().on(Platform::Ms).to_string(), "ms:org/m");
    }

    #[test]
    fn urls() {
        let r = p("https://huggingface.co/datasets/o/n").unwrap();
        assert_eq!(
            (r.platform, r.repo_type, r.endpoint.as_deref()),
            (Platform::Hf, RepoType::Dataset, Some("https://huggingface.co"))
        );
        let m = p("https://modelscope.cn/models/o/n").unwrap();
        assert_eq!((m.platform, m.repo_type), (Platform::Ms, RepoType::Model));
        assert_eq!(p("https://huggingface.co/o/n.git").unwrap().id(), "o/n");
        assert_eq!(
            p("https://www.modelscope.ai/models/o/n").unwrap().platform,
            Platform::Ms
        );
        // A host that only contains a hub's name is a git host when it says .git, else unknown.
        let g = p("https://huggingface.co.evil.example/o/n.git").unwrap();
        assert_eq!(g.platform, Platform::Git);
        // The host of an endpoint the user named for a platform is that platform's hub.
        let known = [(Platform::Hf, "127.0.0.1:8080".to_string())];
        let r = RepoRef::parse_with("http://127.0.0.1:8080/o/n", RepoType::Model, &known).unwrap();
        assert_eq!(
            (r.platform, r.endpoint.as_deref()),
            (Platform::Hf, Some("http://127.0.0.1:8080"))
        );
        assert!(p("http://127.0.0.1:8080/o/n").is_err());
    }

    #[test]
    fn git_hosts_by_url() {
        let g = p("https://oauth2:s3cr%2Ft@gitlab.example.com/group/sub/proj.git").unwrap();
        assert_eq!(
            (g.platform, g.namespace.as_str(), g.name.as_str()),
            (Platform::Git, "group/sub", "proj")
        );
        assert_eq!(g.endpoint.as_deref(), Some("https://gitlab.example.com"));
        let (user, token) = g.credentials.clone().unwrap();
        assert_eq!((user.as_str(), token.expose()), ("oauth2", "s3cr/t"));
        assert_eq!(g.to_string(), "https://gitlab.example.com/group/sub/proj.git");
        assert!(!format!("{g:?}").contains("s3cr"));
        let h = p("git:http://127.0.0.1:9/acme/m").unwrap();
        assert_eq!((h.platform, h.id().as_str()), (Platform::Git, "acme/m"));
        assert!(p("https://gitlab.example.com/proj.git").is_err());
        assert!(p("https://gitlab.example.com/a/../b.git").is_err());
        assert!(p("https://gitlab.example.com/group/proj").is_err());
    }

    #[test]
    fn bad_input_is_explained() {
        for bad in [
            "org/name",
            "xx:o/n",
            "hf:o",
            "hf:o/n/x/y",
            "hf:../n",
            "hf:o/n n",
            "ms:spaces/o/n",
            "https://u:t@huggingface.co/o/n",
            "https://example.com/o/n",
            "https://huggingface.co.evil.example/o/n",
            "https://my-modelscope.example/models/o/n",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.is_user_error(), "{bad}: {e}");
        }
    }
}
