//! The access-key pair of the clouds that sign requests with one (Alibaba Cloud, Tencent Cloud):
//! one type, read the way the providers' official SDKs read it, and never printed.

use std::path::Path;

/// Where a provider keeps its key pair: two environment variables, and two keys of a profile in
/// its INI credentials file.
#[derive(Debug, Clone, Copy)]
pub struct KeyPairNames {
    pub env_id: &'static str,
    pub env_secret: &'static str,
    pub file_id: &'static str,
    pub file_secret: &'static str,
}

/// An access key ID and its secret. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct KeyPair {
    pub id: String,
    secret: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        KeyPair {
            id: id.into(),
            secret: secret.into(),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// From the credentials file if one is named, else from the provider's variables.
    pub fn resolve(file: Option<&Path>, profile: &str, names: &KeyPairNames) -> Result<KeyPair, String> {
        match file {
            Some(path) => Self::from_file(path, profile, names),
            None => {
                let id = std::env::var(names.env_id).unwrap_or_default();
                let secret = std::env::var(names.env_secret).unwrap_or_default();
                if id.is_empty() || secret.is_empty() {
                    return Err(format!(
                        "set {} and {}, or credentials_file",
                        names.env_id, names.env_secret
                    ));
                }
                Ok(KeyPair::new(id, secret))
            }
        }
    }

    /// The profile's two keys in the provider's INI file.
    pub fn from_file(path: &Path, profile: &str, names: &KeyPairNames) -> Result<KeyPair, String> {
        let [id, secret] = ini_profile(path, profile, [names.file_id, names.file_secret])?;
        Ok(KeyPair::new(id, secret))
    }
}

/// The values of `keys` in section `[profile]` of an INI credentials file, as the official SDKs
/// and CLIs write them (`key = value`, optional quotes, `#` and `;` comments). A key that is
/// missing or empty is an error naming the file and the profile, never a value.
pub fn ini_profile<const N: usize>(
    path: &Path,
    profile: &str,
    keys: [&str; N],
) -> Result<[String; N], String> {
    let text =
        std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut section = String::new();
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if let Some(index) = keys.iter().position(|k| *k == key.trim()) {
                values[index] = Some(value.trim().trim_matches('"').to_string());
            }
        }
    }
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (index, value) in values.into_iter().enumerate() {
        match value {
            Some(value) if !value.is_empty() => out[index] = value,
            _ => {
                return Err(format!(
                    "{}: profile [{profile}] lacks {}",
                    path.display(),
                    keys.join(" or ")
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: KeyPairNames = KeyPairNames {
        env_id: "LBTRIAGE_TEST_UNSET_ID",
        env_secret: "LBTRIAGE_TEST_UNSET_SECRET",
        file_id: "access_key_id",
        file_secret: "access_key_secret",
    };

    #[test]
    fn the_named_profile_is_read_and_the_secret_never_printed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naccess_key_id = a\naccess_key_secret = b\n\n[prod]\naccess_key_id = ID\naccess_key_secret = \"s3cret\"\n",
        )
        .expect("write");
        let pair = KeyPair::from_file(&file, "prod", &NAMES).expect("prod profile");
        assert_eq!((pair.id.as_str(), pair.secret()), ("ID", "s3cret"));
        assert!(!format!("{pair:?}").contains("s3cret"));
        assert!(KeyPair::from_file(&file, "missing", &NAMES).is_err());
        let err = KeyPair::resolve(None, "default", &NAMES).expect_err("no variables");
        assert!(err.contains("LBTRIAGE_TEST_UNSET_ID"), "{err}");
    }

    #[test]
    fn an_ini_profile_gives_its_keys_or_names_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("lbtriage-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[default]\nid = a\nsecret = b\n\n[prod]\n# comment\nid = prod-id\nsecret = \"s3cret\"\n[empty]\nid = x\nsecret =\n",
        )
        .expect("write");
        assert_eq!(
            ini_profile(&file, "prod", ["id", "secret"]).expect("prod"),
            ["prod-id", "s3cret"]
        );
        let missing = ini_profile(&file, "empty", ["id", "secret"]).expect_err("empty secret");
        assert!(
            missing.contains("[empty]") && missing.contains("lacks"),
            "{missing}"
        );
        assert!(ini_profile(&file, "absent", ["id"]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
