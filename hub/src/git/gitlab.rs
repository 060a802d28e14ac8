//! GitLab's pull mirrors (`/api/v4`): point a project at a source URL, trigger a pull, watch it.
//! The import URL carries the source's credentials for GitLab to store; it is only ever held as
//! a [`Secret`].

use serde_json::{Value, json};

use super::GitClient;
use crate::error::{Error, Result};
use crate::http::enc;
use crate::redact::Secret;
use crate::reporef::RepoRef;

/// Where a pull mirror stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorStatus {
    /// `none`, `scheduled`, `started`, `finished` or `failed`.
    pub state: String,
    pub last_error: Option<String>,
}

/// `url` with `user:token@` inserted after the scheme (the token percent-encoded).
pub fn url_with_credentials(url: &str, username: &str, token: Option<&Secret>) -> Secret {
    match (url.split_once("://"), token) {
        (Some((scheme, rest)), Some(t)) => {
            let e = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            Secret::new(format!("{scheme}://{}:{}@{rest}", e(username), e(t.expose())))
        }
        _ => Secret::new(url),
    }
}

impl GitClient {
    fn project_api(&self, repo: &RepoRef) -> String {
        format!("{}/api/v4/projects/{}", self.endpoint(), enc(&repo.id()))
    }

    async fn api_send(&self, what: &str, method: reqwest::Method, url: &str, body: Option<&Value>) -> Result<Value> {
        let resp = self
            .http
            .send(what, || {
                let rb = self.api_auth(self.http.client.request(method.clone(), url));
                match body {
                    Some(b) => rb.json(b),
                    None => rb,
                }
            })
            .await?;
        let text = crate::http::text_capped(what, resp).await.unwrap_or_default();
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Makes the project a pull mirror of `import_url`.
    pub async fn configure_pull_mirror(&self, repo: &RepoRef, import_url: &Secret) -> Result<()> {
        let body = json!({"import_url": import_url.expose(), "mirror": true});
        self.api_send(
            "configuring the pull mirror",
            reqwest::Method::PUT,
            &self.project_api(repo),
            Some(&body),
        )
        .await
        .map_err(|e| match e {
            Error::Http { status: 404, .. } => Error::Input(format!(
                "{} has no GitLab project API: --use-remote-mirror needs a GitLab destination",
                self.endpoint()
            )),
            e => e,
        })?;
        Ok(())
    }

    /// Asks the host to pull now.
    pub async fn trigger_pull(&self, repo: &RepoRef) -> Result<()> {
        let url = format!("{}/mirror/pull", self.project_api(repo));
        self.api_send("starting the mirror pull", reqwest::Method::POST, &url, None)
            .await?;
        Ok(())
    }

    /// The pull mirror's state.
    pub async fn pull_status(&self, repo: &RepoRef) -> Result<MirrorStatus> {
        let url = format!("{}/mirror/pull", self.project_api(repo));
        let v = self
            .api_send("reading the mirror status", reqwest::Method::GET, &url, None)
            .await?;
        Ok(MirrorStatus {
            state: v["update_status"].as_str().unwrap_or("none").to_string(),
            last_error: v["last_error"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    /// The commit a branch of the project points at (`None`: no such branch yet).
    pub async fn branch_head(&self, repo: &RepoRef, branch: &str) -> Result<Option<String>> {
        let path = format!("projects/{}/repository/branches/{}", enc(&repo.id()), enc(branch));
        Ok(self
            .api_get("reading a branch", &path)
            .await?
            .and_then(|v| v["commit"]["id"].as_str().map(str::to_string)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_inside_the_url_encoded() {
        let s = url_with_credentials("https://h/a/b.git", "oauth2", Some(&Secret::new("t/k@")));
        assert_eq!(s.expose(), "https://oauth2:t%2Fk%40@h/a/b.git");
        assert_eq!(
            url_with_credentials("https://h/x.git", "u", None).expose(),
            "https://h/x.git"
        );
    }
}
