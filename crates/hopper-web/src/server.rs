//! Listening: binds the web port, optionally wraps connections in TLS (`--tls-cert` and
//! `--tls-key`), and serves each connection with hyper.
//!
//! The accept loop is written out (rather than `axum::serve`) so plain and TLS connections
//! share one path, and so a client that sends garbage or drops mid-handshake only costs its
//! own connection.

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a TLS client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Loads a certificate chain and key (PEM) into a TLS acceptor; errors name the file.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {}: no PEM certificate found",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "--tls-key {}: no usable PEM private key: {e}",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("--tls-cert/--tls-key do not form a usable pair: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds `host:port`; `host` may be empty or `*` for every interface, as in Locust.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, String> {
    let host = match host {
        "" | "*" => "0.0.0.0",
        h => h.trim_start_matches('[').trim_end_matches(']'),
    };
    TcpListener::bind((host, port))
        .await
        .map_err(|e| format!("cannot bind the web interface to {host}:{port}: {e}"))
}

/// Serves `app` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, app: Router, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(target: "hopper.web", "accepting a web connection failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                // A client that connects and never says hello must not hold a socket forever.
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), app, peer).await,
                        Ok(Err(e)) => {
                            tracing::debug!(target: "hopper.web", "TLS handshake with {peer} failed: {e}")
                        }
                        Err(_) => {
                            tracing::debug!(target: "hopper.web", "TLS handshake with {peer} timed out")
                        }
                    }
                }
                None => serve_connection(TokioIo::new(stream), app, peer).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: Router, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let result = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A client that opens a connection and sends nothing is dropped, not kept forever.
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(io, service)
        .await;
    if let Err(e) = result {
        tracing::debug!(target: "hopper.web", "web connection from {peer} ended: {e}");
    }
}
