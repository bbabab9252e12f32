//! TLS for `https://` targets: the user-facing options and the rustls client configurations
//! built from them.
//!
//! A rustls `ClientConfig` is costly to build (root store, provider) and cheap to share, so
//! each distinct [`TlsOptions`] is turned into one configuration per process and every user
//! with those options shares it through an `Arc`. The default options (Mozilla's roots
//! compiled in via `webpki-roots`, so HTTPS works on a machine without a CA bundle; ALPN
//! `h2` then `http/1.1`) have their own `OnceLock`, so the common case takes no lock.

use crate::conn::Io;
use crate::errors;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A configuration, or the failure text every `https://` request reports when the options
/// cannot be used (an unreadable certificate or key).
type Built = Result<Arc<rustls::ClientConfig>, String>;

/// How a user's client speaks TLS, Locust's `verify=` and `cert=` translated.
///
/// Set them through [`HttpClient`](crate::HttpClient)'s methods (from `on_start`) or for a
/// whole user class with `client_config(|c| { c.tls.accept_invalid_certs(true); })`.
/// Mistakes in certificates or keys are reported as the failure of each `https://` request.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    accept_invalid_certs: bool,
    http1_only: bool,
    /// Extra trusted roots, PEM, on top of the built-in ones.
    roots: Vec<Arc<[u8]>>,
    client_cert: Option<ClientCert>,
}

/// A client certificate chain and its private key, PEM.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientCert {
    chain: Arc<[u8]>,
    key: Arc<[u8]>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("TlsOptions")
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("http1_only", &self.http1_only)
            .field("extra_roots", &self.roots.len())
            .field("client_certificate", &self.client_cert.is_some())
            .finish()
    }
}

impl TlsOptions {
    /// Accepts any server certificate and host name (requests' `verify=False`), for test
    /// environments with self-signed certificates. Off by default.
    pub fn accept_invalid_certs(&mut self, accept: bool) -> &mut Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Also trusts the certificates in this PEM text (e.g. a private CA), like requests'
    /// `verify="ca.pem"` except that the built-in roots stay trusted.
    pub fn add_root_certificate(&mut self, pem: impl AsRef<[u8]>) -> &mut Self {
        self.roots.push(Arc::from(pem.as_ref()));
        self
    }

    /// Presents this certificate chain and private key (both PEM) when the server asks for
    /// one: mutual TLS, requests' `cert=(cert, key)`.
    pub fn client_certificate(
        &mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.client_cert = Some(ClientCert {
            chain: Arc::from(cert_pem.as_ref()),
            key: Arc::from(key_pem.as_ref()),
        });
        self
    }

    /// Offers only HTTP/1.1 in ALPN, so servers that could speak HTTP/2 do not.
    pub fn http1_only(&mut self, only: bool) -> &mut Self {
        self.http1_only = only;
        self
    }

    fn is_default(&self) -> bool {
        !self.accept_invalid_certs
            && !self.http1_only
            && self.roots.is_empty()
            && self.client_cert.is_none()
    }
}

/// The shared rustls configuration for these options, built on first use.
pub(crate) fn client_config(opts: &TlsOptions) -> Built {
    if opts.is_default() {
        static DEFAULT: OnceLock<Built> = OnceLock::new();
        return DEFAULT.get_or_init(|| build(opts)).clone();
    }
    static OTHERS: OnceLock<Mutex<HashMap<TlsOptions, Built>>> = OnceLock::new();
    let mut others = OTHERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(built) = others.get(opts) {
        return built.clone();
    }
    let built = build(opts);
    others.insert(opts.clone(), built.clone());
    built
}

fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn build(opts: &TlsOptions) -> Built {
    let ssl =
        |what: &str, e: &dyn fmt::Display| errors::exception("SSLError", &format!("{what}: {e}"));
    let builder = rustls::ClientConfig::builder_with_provider(provider().clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ssl("TLS setup failed", &e))?;
    let builder = if opts.accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider().clone())))
    } else {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for pem in &opts.roots {
            let certs =
                read_certs(pem).map_err(|e| ssl("could not load the root certificate", &e))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| ssl("could not load the root certificate", &e))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &opts.client_cert {
        None => builder.with_no_client_auth(),
        Some(ClientCert { chain, key }) => {
            let certs =
                read_certs(chain).map_err(|e| ssl("could not load the client certificate", &e))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| ssl("could not load the client key", &e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ssl("could not use the client certificate", &e))?
        }
    };
    config.alpn_protocols = if opts.http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// Every certificate in a PEM text; an error when there is none.
fn read_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".to_string());
    }
    Ok(certs)
}

/// The server name rustls checks the certificate against and sends as SNI (not sent for IP
/// addresses, which are checked against the certificate's IP SANs).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host)
        .map(|n| n.to_owned())
        .map_err(|_| {
            errors::exception(
                "SSLError",
                "invalid server name: the host is neither a DNS name nor an IP address",
            )
        })
}

/// The failure text of the first I/O error on a TLS connection, or of the first TLS error
/// when one follows (a write can fail with a broken pipe before the server's alert, which
/// says why, is read).
#[derive(Default)]
pub(crate) struct FirstError(Mutex<Option<(bool, String)>>);

impl FirstError {
    fn note(&self, e: &io::Error) {
        let is_tls = e
            .get_ref()
            .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some());
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|(had_tls, _)| is_tls && !had_tls) {
            *slot = Some((is_tls, errors::io_error(e)));
        }
    }

    /// The recorded failure text, if the connection saw an I/O error.
    pub(crate) fn text(&self) -> Option<String> {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|(_, text)| text.clone())
    }
}

/// A client TLS stream that notes the I/O errors passing through it in a [`FirstError`].
pub(crate) struct Watched {
    stream: tokio_rustls::client::TlsStream<Io>,
    error: Arc<FirstError>,
}

impl Watched {
    pub(crate) fn new(
        stream: tokio_rustls::client::TlsStream<Io>,
        error: Arc<FirstError>,
    ) -> Watched {
        Watched { stream, error }
    }

    fn watch<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll {
            self.error.note(e);
        }
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.watch(poll)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.watch(poll)
    }
}

/// Accepts any certificate, but still checks that the server holds its key (the handshake
/// signatures), as `verify=False` does with OpenSSL.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_shared_per_distinct_options() {
        let a = client_config(&TlsOptions::default()).unwrap();
        let b = client_config(&TlsOptions::default()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);

        let mut h1 = TlsOptions::default();
        h1.http1_only(true);
        let c = client_config(&h1).unwrap();
        let d = client_config(&h1.clone()).unwrap();
        assert!(Arc::ptr_eq(&c, &d));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_pem_is_a_failure_text_not_a_panic() {
        let mut opts = TlsOptions::default();
        opts.add_root_certificate("not a certificate");
        assert_eq!(
            client_config(&opts).unwrap_err(),
            "SSLError('could not load the root certificate: no certificate in the PEM text')"
        );
        let mut opts = TlsOptions::default();
        opts.client_certificate("", "");
        assert!(client_config(&opts)
            .unwrap_err()
            .starts_with("SSLError('could not load the client certificate"));
    }

    #[test]
    fn debug_hides_the_key() {
        let mut opts = TlsOptions::default();
        opts.client_certificate("CERT", "SECRET KEY");
        assert!(!format!("{opts:?}").contains("SECRET"));
    }

    #[test]
    fn ip_addresses_are_server_names() {
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(server_name("example.com").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
