//! `--web.config.file`, in the Prometheus exporter-toolkit format: TLS for every endpoint
//! (`tls_server_config`) and HTTP basic authentication with bcrypt hashes (`basic_auth_users`).
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # relative paths are relative to this file
//!   key_file: server.key
//!   min_version: TLS12           # TLS12 (default) or TLS13
//!   client_auth_type: NoClientCert   # or RequireAndVerifyClientCert with client_ca_file
//!   client_ca_file: clients.pem
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("web config {path}: {}{message}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct WebConfigError {
    pub path: String,
    pub key: Option<String>,
    pub message: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
}

/// One reading of the web config file: what `server::access` serves with until the file changes.
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    users: BTreeMap<String, String>,
    /// Checked for unknown users, so a wrong user name costs as much as a wrong password.
    dummy_hash: String,
    /// Every file this reading depends on (the config, certificates, keys), to notice rotation.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebConfig {
    /// No TLS, no authentication: the default without `--web.config.file`.
    pub fn open() -> Self {
        WebConfig {
            tls: None,
            users: BTreeMap::new(),
            dummy_hash: String::new(),
            files: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let error = |key: Option<&str>, message: String| WebConfigError {
            path: path.display().to_string(),
            key: key.map(str::to_string),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|err| error(None, format!("cannot read: {err}")))?;
        let raw: Raw = if text.trim().is_empty() {
            Raw::default()
        } else {
            crate::yaml::from_str(&text).map_err(|err| error(err.path.as_deref(), err.message))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |file: &Path| {
            if file.is_absolute() {
                file.to_path_buf()
            } else {
                base.join(file)
            }
        };
        for (user, hash) in &raw.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(error(
                    Some(&format!("basic_auth_users.{user}")),
                    "is not a bcrypt hash ($2a$/$2b$/$2y$...)".to_string(),
                ));
            }
        }
        let mut files = vec![path.to_path_buf()];
        let tls = match raw.tls_server_config {
            None => None,
            Some(tls) => {
                let cert = tls
                    .cert_file
                    .ok_or_else(|| error(Some("tls_server_config.cert_file"), "is required".to_string()))?;
                let key = tls
                    .key_file
                    .ok_or_else(|| error(Some("tls_server_config.key_file"), "is required".to_string()))?;
                let (cert, key) = (resolve(&cert), resolve(&key));
                files.extend([cert.clone(), key.clone()]);
                if let Some(ca) = &tls.client_ca_file {
                    files.push(resolve(ca));
                }
                let chain =
                    read_pem_certs(&cert).map_err(|m| error(Some("tls_server_config.cert_file"), m))?;
                let key = read_pem_key(&key).map_err(|m| error(Some("tls_server_config.key_file"), m))?;
                let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
                    None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
                    Some("TLS13") => &[&rustls::version::TLS13],
                    Some(other) => {
                        return Err(error(
                            Some("tls_server_config.min_version"),
                            format!("{other:?}: use TLS12 or TLS13"),
                        ))
                    }
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(versions)
                    .map_err(|err| error(Some("tls_server_config.min_version"), err.to_string()))?;
                let builder = match tls.client_auth_type.as_deref() {
                    None | Some("NoClientCert") => builder.with_no_client_auth(),
                    Some("RequireAndVerifyClientCert") => {
                        let ca = tls.client_ca_file.ok_or_else(|| {
                            error(
                                Some("tls_server_config.client_ca_file"),
                                "is required with RequireAndVerifyClientCert".to_string(),
                            )
                        })?;
                        let mut roots = rustls::RootCertStore::empty();
                        for cert in read_pem_certs(&resolve(&ca))
                            .map_err(|m| error(Some("tls_server_config.client_ca_file"), m))?
                        {
                            roots.add(cert).map_err(|err| {
                                error(Some("tls_server_config.client_ca_file"), err.to_string())
                            })?;
                        }
                        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                            Arc::new(roots),
                            provider,
                        )
                        .build()
                        .map_err(|err| error(Some("tls_server_config.client_ca_file"), err.to_string()))?;
                        builder.with_client_cert_verifier(verifier)
                    }
                    Some(other) => {
                        return Err(error(
                            Some("tls_server_config.client_auth_type"),
                            format!("{other:?}: use NoClientCert or RequireAndVerifyClientCert"),
                        ))
                    }
                };
                let mut config = builder.with_single_cert(chain, key).map_err(|err| {
                    error(
                        Some("tls_server_config.key_file"),
                        format!("does not match the certificate: {err}"),
                    )
                })?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(config))
            }
        };
        let cost = raw
            .basic_auth_users
            .values()
            .filter_map(|hash| hash.parse::<bcrypt::HashParts>().ok())
            .map(|parts| parts.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy_hash = bcrypt::hash("lbtriage: no such user", cost).unwrap_or_default();
        Ok(WebConfig {
            tls,
            users: raw.basic_auth_users,
            dummy_hash,
            files,
        })
    }

    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// The user, password and the bcrypt hash to check them against (the dummy hash for an
    /// unknown user), or None when the header carries no basic credentials.
    pub fn credentials(&self, header: Option<&str>) -> Option<Credentials> {
        let (user, password) = header.and_then(parse_basic)?;
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (self.dummy_hash.clone(), false),
        };
        Some(Credentials {
            user,
            password,
            hash,
            known,
        })
    }
}

/// Basic credentials from a request, ready to be checked off the async workers.
pub struct Credentials {
    pub user: String,
    pub password: String,
    hash: String,
    known: bool,
}

impl Credentials {
    /// The bcrypt check: slow on purpose (tens of milliseconds at cost 10). Never call it on an
    /// async worker.
    pub fn verify(&self) -> bool {
        bcrypt::verify(&self.password, &self.hash).unwrap_or(false) && self.known
    }
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn read_pem_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|err| format!("{}: {err}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|err| format!("{}: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn read_pem_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).map_err(|err| format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_users(users: &[(&str, &str)]) -> WebConfig {
        let mut config = WebConfig::open();
        for (user, password) in users {
            config
                .users
                .insert(user.to_string(), bcrypt::hash(password, 4).expect("hash"));
        }
        config
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    fn check(config: &WebConfig, header: Option<&str>) -> bool {
        config.credentials(header).is_some_and(|c| c.verify())
    }

    #[test]
    fn basic_auth_checks_user_and_password() {
        let config = with_users(&[("prometheus", "s3cret:with colon")]);
        assert!(config.requires_auth());
        assert!(check(&config, Some(&basic("prometheus", "s3cret:with colon"))));
        assert!(!check(&config, Some(&basic("prometheus", "wrong"))));
        assert!(!check(&config, Some(&basic("nobody", "s3cret:with colon"))));
        assert!(!check(&config, None));
        assert!(!check(&config, Some("Bearer abc")));
        assert!(!check(&config, Some("Basic !!!not-base64")));
        assert!(!WebConfig::open().requires_auth());
    }
}
