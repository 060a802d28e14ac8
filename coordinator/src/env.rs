//! The environment a run sees: the process environment plus an optional `.env` file
//! (`KEY=VALUE` lines, `#` comments, optional quotes, `export ` prefixes). The process
//! environment wins. Values are kept in memory and handed to workers explicitly, never exported.

use std::collections::HashMap;
use std::path::Path;

/// Variables for this run. Values may be tokens, so `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish_non_exhaustive()
    }
}

impl Env {
    /// The process environment over the `.env` file (explicit `--env-file`, else `./.env` if present).
    pub fn load(env_file: Option<&Path>) -> Result<Self, crate::error::Error> {
        use crate::error::Error;
        let mut vars = HashMap::new();
        let default = Path::new(".env");
        let file = match env_file {
            Some(p) => Some(p),
            None if default.is_file() => Some(default),
            None => None,
        };
        if let Some(p) = file {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Input(format!("cannot read env file {}: {e}", p.display())))?;
            vars.extend(parse(&text).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?);
        }
        vars.extend(std::env::vars());
        Ok(Env { vars })
    }

    /// A variable's non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// For tests: an environment from pairs only.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Env {
            vars: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

/// Parses `.env` text; an error names the line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("line {}: invalid variable name", n + 1));
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v.split(" #").next().unwrap_or(v).trim()
        };
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotenv() {
        let v = parse("# tokens\nHF_TOKEN=hf_x\nexport MODELSCOPE_TOKEN=\"ms y\"\nA='b' \nC=d # note\n").unwrap();
        assert_eq!(
            v,
            [
                ("HF_TOKEN", "hf_x"),
                ("MODELSCOPE_TOKEN", "ms y"),
                ("A", "b"),
                ("C", "d")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(parse("oops").unwrap_err().contains("line 1"));
        assert!(parse("BAD-NAME=1").is_err());
        let env = Env::from_pairs(&[("HF_TOKEN", "hf_secret_value")]);
        assert!(
            !format!("{env:?}").contains("hf_secret_value"),
            "Debug never shows values"
        );
    }
}
