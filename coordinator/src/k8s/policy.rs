//! What a Migration may ask of the controller on a shared cluster (docs/security.md): the worker
//! image is the controller's or one the cluster admin allowed, every hub a Migration names is a
//! public hub or on the admin's allowlist, no URL carries credentials, and a tokens Secret is
//! used only when it opts in with the label `hubmigrate.dev/tokens: "true"`. Checked before any
//! request leaves and before any Job exists.

use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};

use super::crd::MigrationSpec;

/// The label a Secret carries to be usable as a Migration's tokens Secret.
pub const TOKENS_LABEL: &str = "hubmigrate.dev/tokens";

/// The public hubs' origins: the only hubs a Migration may name without the admin's say.
pub const PUBLIC_HUBS: &[&str] = &[
    "https://huggingface.co",
    "https://hf.co",
    "https://modelscope.cn",
    "https://www.modelscope.cn",
];

/// The admin's rules, from the controller's flags.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The controller's own worker image (a Migration naming none gets it).
    pub default_image: String,
    /// Other images a Migration may name (`--allowed-worker-image`).
    pub images: Vec<String>,
    /// Origins besides the public hubs a Migration may name (`--allowed-endpoint`).
    pub origins: Vec<String>,
}

impl Policy {
    /// The rules of `--worker-image`, `--allowed-worker-image` and `--allowed-endpoint`; an
    /// allowed endpoint that is not an http(s) URL is a bad flag.
    pub fn new(default_image: &str, images: &[String], endpoints: &[String]) -> Result<Self, String> {
        let origins = endpoints
            .iter()
            .map(|e| origin(e).map_err(|why| format!("--allowed-endpoint {e:?}: {why}")))
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            default_image: default_image.to_string(),
            images: images.to_vec(),
            origins,
        })
    }

    /// The image the Migration's Jobs run.
    pub fn image(&self, spec: &MigrationSpec) -> Result<String, String> {
        match &spec.worker_image {
            None => Ok(self.default_image.clone()),
            Some(i) if *i == self.default_image || self.images.contains(i) => Ok(i.clone()),
            Some(i) => Err(format!(
                "workerImage {:?} is not allowed: the controller runs {:?}{}",
                short(i),
                self.default_image,
                if self.images.is_empty() {
                    String::new()
                } else {
                    format!(" or one of --allowed-worker-image ({})", self.images.join(", "))
                }
            )),
        }
    }

    /// Every rule a spec must follow, as one line naming the first it breaks.
    pub fn check(&self, spec: &MigrationSpec) -> Result<(), String> {
        self.image(spec)?;
        let named = |platform: Platform| match platform {
            Platform::Hf => spec.endpoints.as_ref().and_then(|e| e.huggingface.clone()),
            Platform::Ms => spec.endpoints.as_ref().and_then(|e| e.modelscope.clone()),
            Platform::Git => None,
        };
        for (field, text, endpoint, endpoint_field) in [
            ("source", &spec.source, &spec.source_endpoint, "sourceEndpoint"),
            ("dest", &spec.dest, &spec.dest_endpoint, "destEndpoint"),
        ] {
            let r = RepoRef::parse(text, RepoType::Model).map_err(|e| format!("{field}: {e}"))?;
            if r.credentials.is_some() || has_userinfo(text) {
                return Err(format!(
                    "{field} carries credentials in its URL: put them in the tokens Secret (TARGET_USERNAME, TARGET_TOKEN)"
                ));
            }
            let (url, named_by) = match (&r.endpoint, endpoint, named(r.platform)) {
                (Some(u), _, _) => (u.clone(), field.to_string()),
                (None, Some(e), _) => (e.clone(), endpoint_field.to_string()),
                (None, None, Some(e)) => (e, format!("endpoints.{}", platform_key(r.platform))),
                (None, None, None) => (r.platform.default_endpoint().to_string(), field.to_string()),
            };
            self.allow(&url).map_err(|why| format!("{named_by}: {why}"))?;
        }
        for (f, e) in [
            ("endpoints.huggingface", named(Platform::Hf)),
            ("endpoints.modelscope", named(Platform::Ms)),
        ] {
            if let Some(e) = e {
                self.allow(&e).map_err(|why| format!("{f}: {why}"))?;
            }
        }
        Ok(())
    }

    /// Whether `url`'s origin is a public hub or on the allowlist.
    fn allow(&self, url: &str) -> Result<(), String> {
        if has_userinfo(url) {
            return Err("credentials in a URL are not accepted: use the tokens Secret".into());
        }
        let o = origin(url)?;
        if PUBLIC_HUBS.contains(&o.as_str()) || self.origins.contains(&o) {
            return Ok(());
        }
        Err(format!(
            "{o} is not a public hub nor an endpoint the controller allows (--allowed-endpoint)"
        ))
    }
}

/// At most 120 characters of what a spec says, for a message.
fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

fn platform_key(p: Platform) -> &'static str {
    match p {
        Platform::Hf => "huggingface",
        Platform::Ms => "modelscope",
        Platform::Git => "git",
    }
}

/// Whether a URL names a user (`scheme://user[:password]@host/...`).
fn has_userinfo(url: &str) -> bool {
    let rest = url
        .trim()
        .strip_prefix("git:")
        .or_else(|| url.trim().strip_prefix("git+"))
        .unwrap_or(url.trim());
    match rest.split_once("://") {
        Some((_, after)) => after.split(['/', '?', '#']).next().unwrap_or("").contains('@'),
        None => false,
    }
}

/// `scheme://host[:port]`, lowercased, the default port left out.
pub fn origin(url: &str) -> Result<String, String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{:?} is not an http(s) URL", short(url)))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(format!("{scheme}:// is not http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    let host_port = host_port.strip_suffix(default).unwrap_or(&host_port);
    let host = host_port.split(':').next().unwrap_or("");
    if host.is_empty()
        || host_port
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
    {
        return Err(format!("{:?} has no valid host", short(url)));
    }
    Ok(format!("{scheme}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: &str, dest: &str) -> MigrationSpec {
        MigrationSpec {
            source: source.into(),
            dest: dest.into(),
            ..Default::default()
        }
    }

    fn policy() -> Policy {
        Policy::new(
            "ghcr.io/hubmigrate/hubmigrate:1",
            &["registry.local/hubmigrate:1".into()],
            &["https://hub.internal:8443/".into(), "http://gitlab.internal".into()],
        )
        .unwrap()
    }

    #[test]
    fn public_hubs_and_allowed_endpoints_pass() {
        let p = policy();
        assert_eq!(p.check(&spec("hf:acme/m", "ms:acme/m")), Ok(()));
        let mut s = spec("hf:acme/m", "hf:acme/m");
        s.dest_endpoint = Some("https://HUB.internal:8443/api".into());
        assert_eq!(p.check(&s), Ok(()));
        assert_eq!(
            p.check(&spec("hf:acme/m", "http://gitlab.internal:80/acme/m.git")),
            Ok(())
        );
    }

    #[test]
    fn foreign_endpoints_are_refused_naming_the_field() {
        let p = policy();
        let mut s = spec("hf:acme/m", "ms:acme/m");
        s.endpoints = Some(crate::k8s::crd::Endpoints {
            huggingface: Some("https://evil.example".into()),
            modelscope: None,
        });
        let why = p.check(&s).unwrap_err();
        assert!(
            why.starts_with("endpoints.huggingface: https://evil.example is not"),
            "{why}"
        );
        let mut s = spec("hf:acme/m", "hf:acme/m");
        s.source_endpoint = Some("https://hub.internal:9443".into());
        assert!(p.check(&s).unwrap_err().starts_with("sourceEndpoint:"));
        let why = p
            .check(&spec("hf:acme/m", "https://git.example/acme/m.git"))
            .unwrap_err();
        assert!(why.starts_with("dest: https://git.example is not"), "{why}");
        // A host that merely contains a hub's name is not that hub.
        let why = p
            .check(&spec("https://huggingface.co.evil.example/acme/m", "ms:acme/m"))
            .unwrap_err();
        assert!(
            why.contains("cannot tell which hub huggingface.co.evil.example"),
            "{why}"
        );
        let why = p
            .check(&spec("hf:acme/m", "https://huggingface.co.evil.example/acme/m.git"))
            .unwrap_err();
        assert!(
            why.contains("https://huggingface.co.evil.example is not a public hub"),
            "{why}"
        );
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        let p = policy();
        for dest in [
            "http://root:glpat-x@gitlab.internal/acme/m.git",
            "git:http://root@gitlab.internal/acme/m.git",
        ] {
            let why = p.check(&spec("hf:acme/m", dest)).unwrap_err();
            assert!(why.contains("credentials"), "{dest}: {why}");
            assert!(!why.contains("glpat-x"), "the secret is not repeated: {why}");
        }
    }

    #[test]
    fn only_allowed_images_run() {
        let p = policy();
        let mut s = spec("hf:acme/m", "ms:acme/m");
        assert_eq!(p.image(&s).unwrap(), "ghcr.io/hubmigrate/hubmigrate:1");
        s.worker_image = Some("registry.local/hubmigrate:1".into());
        assert_eq!(p.image(&s).unwrap(), "registry.local/hubmigrate:1");
        s.worker_image = Some("attacker/steal:latest".into());
        let why = p.check(&s).unwrap_err();
        assert!(
            why.contains("workerImage \"attacker/steal:latest\" is not allowed"),
            "{why}"
        );
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(origin("HTTPS://Hub.Example:443/x").unwrap(), "https://hub.example");
        assert_eq!(origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(origin("ftp://hub").is_err());
        assert!(origin("https://").is_err());
        assert!(origin("https://a b").is_err());
    }
}
