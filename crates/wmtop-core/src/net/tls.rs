//! TLS for the HTTPS clients (Keycloak, the series API, ClickHouse): one rustls
//! configuration built from the settings (the bundled Mozilla roots plus a private CA
//! file, or no verification at all with `--insecure`), and failures told apart in words:
//! an unknown certificate authority, a name mismatch, a refused connection, a time-out.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{setting} {path}: {message}")]
    CaFile {
        setting: &'static str,
        path: String,
        message: String,
    },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration: Mozilla's roots and `ca_file`'s certificates, or no
/// verification when `insecure`.
pub fn client_config(
    ca_file: Option<&Path>,
    ca_setting: &'static str,
    insecure: bool,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |message: String| TlsSetupError::CaFile {
            setting: ca_setting,
            path: path.display().to_string(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `--insecure`: every certificate is accepted (signatures are still checked).
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What went wrong reaching a server, as far as the error chain tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The certificate is signed by a CA not trusted here.
    UnknownCa,
    /// The certificate is not for the name or address connected to.
    NameMismatch,
    /// The certificate expired or is not valid yet.
    Expired,
    /// Another TLS failure, in rustls' words.
    Tls(String),
    /// Nothing listens there.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The name does not resolve.
    UnknownHost,
}

impl ConnectFailure {
    /// A failure retrying cannot fix: the certificate or the trust is wrong.
    pub fn permanent(&self) -> bool {
        matches!(
            self,
            ConnectFailure::UnknownCa
                | ConnectFailure::NameMismatch
                | ConnectFailure::Expired
                | ConnectFailure::Tls(_)
        )
    }

    /// In words, with what to do for the TLS cases; `ca_setting` names the setting that
    /// takes a private CA for this server.
    pub fn describe(&self, ca_setting: &str) -> String {
        match self {
            ConnectFailure::UnknownCa => format!(
                "TLS: the server's certificate is signed by an unknown certificate authority (set {ca_setting} to the CA's PEM file)"
            ),
            ConnectFailure::NameMismatch => {
                "TLS: the server's certificate does not match the name or address in the URL (name mismatch)".into()
            }
            ConnectFailure::Expired => "TLS: the server's certificate has expired or is not valid yet".into(),
            ConnectFailure::Tls(e) => format!("TLS: {e}"),
            ConnectFailure::Refused => "connection refused (is the server up, and is the port right?)".into(),
            ConnectFailure::TimedOut => "timed out".into(),
            ConnectFailure::UnknownHost => "the host name does not resolve".into(),
        }
    }
}

/// Walks an error's sources for a TLS or connection failure.
pub fn classify(err: &(dyn StdError + 'static)) -> Option<ConnectFailure> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    let mut found = None;
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(from_rustls(r));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // An io::Error's source() skips the error it wraps: look inside it.
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(from_rustls(r));
                }
                if let Some(f) = classify(inner).filter(ConnectFailure::permanent) {
                    return Some(f);
                }
            }
            let kind = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(ConnectFailure::Refused),
                std::io::ErrorKind::TimedOut => Some(ConnectFailure::TimedOut),
                _ => None,
            };
            found = found.or(kind);
        }
        let text = e.to_string();
        if found.is_none() && text.contains("failed to lookup address") {
            found = Some(ConnectFailure::UnknownHost);
        }
        if found.is_none() && (text.contains("timed out") || text.contains("deadline has elapsed"))
        {
            found = Some(ConnectFailure::TimedOut);
        }
        cur = e.source();
    }
    found
}

fn from_rustls(e: &rustls::Error) -> ConnectFailure {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                ConnectFailure::UnknownCa
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ConnectFailure::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => ConnectFailure::Expired,
            other => ConnectFailure::Tls(format!("invalid certificate: {other:?}")),
        },
        other => ConnectFailure::Tls(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart_through_the_error_chain() {
        let unknown = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(classify(&unknown), Some(ConnectFailure::UnknownCa));
        // As hyper-rustls hands it over: an io::Error inside an io::Error.
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ));
        assert_eq!(classify(&nested), Some(ConnectFailure::UnknownCa));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(classify(&name), Some(ConnectFailure::NameMismatch));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), Some(ConnectFailure::Refused));
        assert!(!ConnectFailure::Refused.permanent());
        assert!(ConnectFailure::UnknownCa.permanent());
        assert!(ConnectFailure::UnknownCa
            .describe("clickhouse_ca_file")
            .contains("unknown certificate authority (set clickhouse_ca_file"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("wmtop-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path), "ca_file", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ca_file ") && err.contains("no PEM certificate"),
            "{err}"
        );
        assert!(client_config(None, "ca_file", true).is_ok());
    }
}
