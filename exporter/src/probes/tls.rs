//! TLS for the listener and https backends. The handshake itself never fails on certificate
//! problems: a recording verifier lets it finish and notes what a real client would have said
//! (chain validity, host name match, earliest expiry), so the probe can report an expired or
//! mismatched certificate as such instead of as a bare handshake error.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;

use super::exchange::Stream;
use super::failure::{Failure, Reason};

/// What the presented certificate chain is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`, ...
    pub version: String,
    /// Unix time of the first expiry in the presented chain.
    pub earliest_expiry: Option<i64>,
    pub chain_valid: bool,
    pub hostname_match: bool,
    /// What verification said, when it did not pass.
    pub problem: Option<String>,
}

impl TlsInfo {
    pub fn trusted(&self) -> bool {
        self.chain_valid && self.hostname_match
    }
}

/// Trust roots, loaded once per probe: the system's, plus an optional extra CA file.
#[derive(Clone)]
pub struct TlsSettings {
    provider: Arc<CryptoProvider>,
    verifier: Option<Arc<WebPkiServerVerifier>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read CA file {path}: {message}")]
pub struct CaFileError {
    path: String,
    message: String,
}

/// The system's roots, read once per process: each probe holding its own parsed copy would cost
/// hundreds of kilobytes per probe.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

/// Settings for probes without an extra CA file, shared by all of them.
fn shared_system_settings() -> &'static TlsSettings {
    static SETTINGS: OnceLock<TlsSettings> = OnceLock::new();
    SETTINGS.get_or_init(|| TlsSettings::build(system_roots().clone()))
}

impl TlsSettings {
    fn build(roots: RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // No roots at all (a bare container): every chain is reported untrusted.
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .ok();
        TlsSettings { provider, verifier }
    }

    pub fn load(extra_ca_file: Option<&Path>) -> Result<Self, CaFileError> {
        if let Some(path) = extra_ca_file {
            let mut roots = system_roots().clone();
            let fail = |message: String| CaFileError {
                path: path.display().to_string(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| fail(err.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| fail(err.to_string()))?;
            if certs.is_empty() {
                return Err(fail("no certificates in it".to_string()));
            }
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(fail("no usable CA certificate".to_string()));
            }
            return Ok(TlsSettings::build(roots));
        }
        Ok(shared_system_settings().clone())
    }

    /// Handshakes over `tcp` for `server_name` (a DNS name or an IP address).
    pub async fn handshake(&self, tcp: TcpStream, server_name: &str) -> Result<(Stream, TlsInfo), Failure> {
        let name = ServerName::try_from(server_name.to_string()).map_err(|_| {
            Failure::new(
                Reason::Tls,
                format!("{server_name:?} is not a valid TLS server name"),
            )
        })?;
        let verifier = Arc::new(RecordingVerifier {
            inner: self.verifier.clone(),
            provider: self.provider.clone(),
            record: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| Failure::new(Reason::Tls, err.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|err| Failure::new(Reason::Tls, format!("handshake failed: {err}")))?;
        let version = stream
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let recorded = verifier
            .record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .unwrap_or_default();
        let info = TlsInfo {
            version,
            earliest_expiry: recorded.earliest_expiry,
            chain_valid: recorded.chain_valid,
            hostname_match: recorded.hostname_match,
            problem: recorded.problem,
        };
        Ok((Box::new(stream), info))
    }
}

#[derive(Debug, Default)]
struct Recorded {
    chain_valid: bool,
    hostname_match: bool,
    earliest_expiry: Option<i64>,
    problem: Option<String>,
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    record: Mutex<Option<Recorded>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::General("no trusted root certificates".to_string())),
        };
        let name_only = matches!(
            verdict,
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        );
        let hostname_match = webpki::EndEntityCert::try_from(end_entity)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(server_name).is_ok());
        let earliest_expiry = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
            .map(|(_, cert)| cert.validity().not_after.timestamp())
            .min();
        let record = Recorded {
            chain_valid: verdict.is_ok() || name_only,
            hostname_match,
            earliest_expiry,
            problem: verdict.err().map(|err| err.to_string()),
        };
        *self
            .record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(record);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
