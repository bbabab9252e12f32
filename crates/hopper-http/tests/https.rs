//! HTTPS and HTTP/2 against real servers on 127.0.0.1: hyper + tokio-rustls with
//! certificates rcgen makes at test time (a test CA, a server certificate it signs, a
//! client certificate for mutual TLS).
//!
//! Checks certificate verification (on by default, extra roots, accepting invalid ones),
//! HTTP/2 through ALPN and forcing HTTP/1.1, client certificates, `https://` against a
//! plain-HTTP port, keep-alive over TLS, and that failures are recorded with stable
//! `SSLError(...)` texts. Statistics are process-wide, so each test uses request names of its
//! own and looks only at those.

use bytes::Bytes;
use hopper_http::HttpClient;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::Version;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// A test CA, a server certificate it signed and a client certificate it signed.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
    client_pem: String,
    client_key_pem: String,
}

/// Certificates for a server reachable as `server_names` (DNS names or IP addresses).
fn pki(server_names: &[&str]) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Hopper test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
    let mut server = CertificateParams::new(names).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "hopper test user");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();

    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_der: server_cert.der().clone(),
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        client_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A rustls server configuration offering `alpn`, optionally requiring a client
/// certificate signed by the test CA.
fn server_config(pki: &Pki, alpn: &[&[u8]], require_client_cert: bool) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(
            vec![pki.server_der.clone()],
            PrivateKeyDer::Pkcs8(pki.server_key.clone_key()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// What a test server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// The HTTP version of every request served.
    versions: Mutex<Vec<Version>>,
    /// The SNI of every completed TLS handshake.
    server_names: Mutex<Vec<Option<String>>>,
}

/// Starts a server on 127.0.0.1 (TLS when `tls` is given) answering every request with
/// 200 "ok"; HTTP/2 when the TLS handshake chose `h2`.
async fn start_server(tls: Option<rustls::ServerConfig>) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            seen2.connections.fetch_add(1, Ordering::SeqCst);
            let seen = seen2.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc_seen = seen.clone();
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    svc_seen.versions.lock().unwrap().push(req.version());
                    async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok"))))
                    }
                });
                let Some(acceptor) = acceptor else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                    return;
                };
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, session) = stream.get_ref();
                let h2 = session.alpn_protocol() == Some(b"h2");
                seen.server_names
                    .lock()
                    .unwrap()
                    .push(session.server_name().map(str::to_string));
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                }
            });
        }
    });
    (port, seen)
}

/// Runs `f` on a runtime whose threads hand their statistics over when idle.
fn run<Fut: std::future::Future<Output = ()>>(f: impl FnOnce() -> Fut) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_park(hopper_stats::flush_thread)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f())
            .await
            .expect("test finished in time");
    });
}

/// (requests, failures) recorded for `GET name`.
fn counts(name: &str) -> (u64, u64) {
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    let s = hopper_stats::global().lock();
    let e = s
        .entries
        .get(&(name.to_string(), "GET".to_string()))
        .unwrap_or_else(|| panic!("no entry for GET {name}"));
    (e.num_requests, e.num_failures)
}

/// The error texts recorded for `name`.
fn errors(name: &str) -> Vec<String> {
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    hopper_stats::global()
        .lock()
        .errors
        .values()
        .filter(|e| e.name == name)
        .map(|e| e.error.clone())
        .collect()
}

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

#[test]
fn default_client_rejects_a_certificate_from_an_unknown_ca() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    run(|| async {
        let (port, seen) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        for _ in 0..2 {
            let r = c.get("/tls/unknown-ca").send().await;
            assert_eq!(r.status(), 0);
        }
        assert!(seen.versions.lock().unwrap().is_empty());
    });
    assert_eq!(counts("/tls/unknown-ca"), (2, 2));
    // One stable error key for both failures.
    assert_eq!(
        errors("/tls/unknown-ca"),
        ["SSLError('certificate verify failed: unable to get local issuer certificate')"]
    );
}

#[test]
fn a_certificate_for_another_name_is_rejected() {
    let pki = pki(&["localhost"]);
    run(|| async {
        let (port, _) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        c.add_root_certificate(&pki.ca_pem);
        let r = c.get("/tls/wrong-name").send().await;
        assert_eq!(r.status(), 0);
    });
    assert_eq!(counts("/tls/wrong-name"), (1, 1));
    assert_eq!(
        errors("/tls/wrong-name"),
        ["SSLError('certificate verify failed: Hostname mismatch, certificate is not valid for this host')"]
    );
}

#[test]
fn an_added_root_makes_the_certificate_trusted_and_sni_carries_the_host_name() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    run(|| async {
        let (port, seen) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
        // By name (sent as SNI) and by IP address (checked against the IP SAN, no SNI).
        for host in ["localhost", "127.0.0.1"] {
            let mut c = HttpClient::new(Some(&format!("https://{host}:{port}")));
            c.add_root_certificate(&pki.ca_pem);
            let r = c.get("/tls/added-root").send().await;
            assert_eq!(r.status(), 200, "{:?}", r.error());
            assert_eq!(r.text(), "ok");
        }
        assert_eq!(
            *seen.server_names.lock().unwrap(),
            [Some("localhost".to_string()), None]
        );
    });
    assert_eq!(counts("/tls/added-root"), (2, 0));
}

#[test]
fn accept_invalid_certs_skips_verification() {
    let pki = pki(&["some.other.name"]);
    run(|| async {
        let (port, _) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        c.accept_invalid_certs(true);
        let r = c.get("/tls/accept-invalid").send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
    });
    assert_eq!(counts("/tls/accept-invalid"), (1, 0));
}

#[test]
fn http2_when_offered_http1_when_forced_or_not_offered() {
    let pki = pki(&["127.0.0.1"]);
    run(|| async {
        let (port, seen) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
        let base = format!("https://127.0.0.1:{port}");
        let mut c = HttpClient::new(Some(&base));
        c.add_root_certificate(&pki.ca_pem);
        let r = c.post("/tls/h2").body("payload").send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        let mut c = HttpClient::new(Some(&base));
        c.add_root_certificate(&pki.ca_pem).http1_only(true);
        let r = c.get("/tls/h1-forced").send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        assert_eq!(
            *seen.versions.lock().unwrap(),
            [Version::HTTP_2, Version::HTTP_11]
        );

        // A server without ALPN gets HTTP/1.1.
        let (port, seen) = start_server(Some(server_config(&pki, &[], false))).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        c.add_root_certificate(&pki.ca_pem);
        let r = c.get("/tls/no-alpn").send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        assert_eq!(*seen.versions.lock().unwrap(), [Version::HTTP_11]);
    });
    assert_eq!(counts("/tls/h1-forced"), (1, 0));
    assert_eq!(counts("/tls/no-alpn"), (1, 0));
}

#[test]
fn a_server_requiring_a_client_certificate() {
    let pki = pki(&["127.0.0.1"]);
    run(|| async {
        for alpn in [H2_AND_H1, &[b"http/1.1"]] {
            let (port, seen) = start_server(Some(server_config(&pki, alpn, true))).await;
            let base = format!("https://127.0.0.1:{port}");
            let mut c = HttpClient::new(Some(&base));
            c.add_root_certificate(&pki.ca_pem);
            let r = c.get("/tls/no-client-cert").send().await;
            assert_eq!(r.status(), 0);

            let mut c = HttpClient::new(Some(&base));
            c.add_root_certificate(&pki.ca_pem)
                .client_certificate(&pki.client_pem, &pki.client_key_pem);
            let r = c.get("/tls/client-cert").send().await;
            assert_eq!(r.status(), 200, "{:?}", r.error());
            assert_eq!(seen.versions.lock().unwrap().len(), 1);
        }
    });
    assert_eq!(counts("/tls/no-client-cert"), (2, 2));
    assert_eq!(counts("/tls/client-cert"), (2, 0));
    // With TLS 1.3 the server refuses after the client's last handshake message, so the
    // client learns it from the alert on its first read. Now and then the server's TCP reset
    // (it closed with the request unread) overtakes the alert and discards it: then the
    // reset is all there is to report, as it would be for Python.
    for e in errors("/tls/no-client-cert") {
        assert!(
            e == "SSLError('received fatal alert: CertificateRequired')"
                || e.starts_with("ConnectionResetError(")
                || e.starts_with("BrokenPipeError("),
            "{e}"
        );
    }
}

#[test]
fn https_against_a_plain_http_port_is_a_recorded_failure() {
    run(|| async {
        let (port, _) = start_server(None).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        let r = c.get("/tls/plain-port").send().await;
        assert_eq!(r.status(), 0);
        // The same port over http works.
        let r = c
            .get(format!("http://127.0.0.1:{port}/tls/plain-port-http"))
            .send()
            .await;
        assert_eq!(r.status(), 200);
    });
    assert_eq!(counts("/tls/plain-port"), (1, 1));
    assert_eq!(
        errors("/tls/plain-port"),
        ["SSLError('wrong version number (the server did not answer with TLS)')"]
    );
}

#[test]
fn requests_reuse_one_tls_connection() {
    let pki = pki(&["127.0.0.1"]);
    run(|| async {
        for http1_only in [false, true] {
            let (port, seen) = start_server(Some(server_config(&pki, H2_AND_H1, false))).await;
            let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
            c.add_root_certificate(&pki.ca_pem).http1_only(http1_only);
            for _ in 0..3 {
                let r = c.get("/tls/keep-alive").send().await;
                assert_eq!(r.status(), 200, "{:?}", r.error());
            }
            assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
            let expected = if http1_only {
                Version::HTTP_11
            } else {
                Version::HTTP_2
            };
            assert_eq!(*seen.versions.lock().unwrap(), [expected; 3]);
        }
    });
    assert_eq!(counts("/tls/keep-alive"), (6, 0));
}

#[test]
fn an_unreadable_root_certificate_fails_each_https_request() {
    run(|| async {
        let mut c = HttpClient::new(Some("https://127.0.0.1:9"));
        c.add_root_certificate(
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        let r = c.get("/tls/bad-root").send().await;
        assert_eq!(r.status(), 0);
    });
    assert_eq!(counts("/tls/bad-root"), (1, 1));
    let errs = errors("/tls/bad-root");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("SSLError('could not load the root certificate: "),
        "{errs:?}"
    );
}
