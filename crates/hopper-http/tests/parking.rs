//! Parking idle connections ([`HttpClient::park_idle`]) against real servers on 127.0.0.1.
//!
//! Checks that a parked HTTP/1.1 connection (plain and TLS) carries the next request on the
//! same TCP connection while its connection task is gone in between; that a server which
//! closes idle connections, soon after a response or at once, causes no failure (the request
//! goes out on a new connection); and that HTTP/2 connections are left alone.
//!
//! The servers run on a runtime of their own (another thread), so the client's runtime
//! holds only the client's own tasks: a live HTTP/1.1 connection has one, a parked one none.
//! They are minimal HTTP/1.1 servers written here rather than hyper's, because one must close
//! idle connections on a schedule the test chooses. Statistics are process-wide, so each test
//! uses request names of its own.

use bytes::Bytes;
use hopper_http::HttpClient;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a test server treats a connection between requests.
#[derive(Clone, Copy)]
enum Idle {
    /// Keeps it open for the next request.
    KeepOpen,
    /// Closes it when no request came this long after a response (0: at once).
    CloseAfter(Duration),
}

/// What a test server counted.
#[derive(Default)]
struct Counts {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// Requests received (counted before the answer goes out).
    requests: AtomicUsize,
}

/// A server on 127.0.0.1 running on its own thread and runtime until dropped.
struct Server {
    port: u16,
    counts: Arc<Counts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts an HTTP/1.1 server (TLS when `tls` is given) answering every `GET` with 200 "ok"
/// and treating idle connections as `idle` says. TLS connections that chose HTTP/2 in ALPN
/// are served by hyper's HTTP/2 server instead.
fn start_server(idle: Idle, tls: Option<rustls::ServerConfig>) -> Server {
    let counts = Arc::new(Counts::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server_counts = counts.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
            let accept = async {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    server_counts.connections.fetch_add(1, Ordering::SeqCst);
                    let counts = server_counts.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Some(acceptor) = acceptor else {
                            serve(tcp, idle, &counts).await;
                            return;
                        };
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                            serve_h2(stream, &counts).await;
                        } else {
                            serve(stream, idle, &counts).await;
                        }
                    });
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = stopped => {}
            }
        });
    });
    let port = port_rx.recv().expect("the server started");
    Server {
        port,
        counts,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// Answers requests (heads only: the client sends `GET`s) until the client closes the
/// connection or, after a response, it stays idle longer than `idle` allows.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, idle: Idle, counts: &Counts) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let mut answered = false;
    loop {
        let between_requests = answered && head.is_empty();
        let read = match idle {
            Idle::CloseAfter(d) if between_requests => {
                match tokio::time::timeout(d, s.read(&mut buf)).await {
                    Ok(r) => r,
                    // Idle too long: close, as servers with a keep-alive timeout do.
                    Err(_) => return,
                }
            }
            _ => s.read(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.drain(..end + 4);
            // Counted before answering: once the client has the answer, the test may read
            // the count, and this thread may not have run again by then.
            counts.requests.fetch_add(1, Ordering::SeqCst);
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if s.write_all(answer).await.is_err() || s.flush().await.is_err() {
                return;
            }
            answered = true;
        }
    }
}

/// Answers every request with 200 "ok" over HTTP/2 (hyper's server).
async fn serve_h2<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S, counts: &Arc<Counts>) {
    let counts = counts.clone();
    let svc = service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
        counts.requests.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok")))) }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(s), svc)
        .await;
}

/// A rustls server configuration with a fresh self-signed certificate for 127.0.0.1,
/// offering these ALPN protocols.
fn self_signed(alpn: &[&[u8]]) -> rustls::ServerConfig {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Runs `f` on a single-threaded runtime of its own, whose statistics are handed over when
/// it idles, so that the runtime's task count is the client's alone.
fn run<Fut: std::future::Future<Output = ()>>(f: impl FnOnce() -> Fut) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(hopper_stats::flush_thread)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f())
            .await
            .expect("test finished in time");
    });
    hopper_stats::flush_thread();
}

/// Tasks alive on the current runtime: the client's connection tasks.
fn connection_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
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

/// Requests `path` `times` times, parking the connection after each response, and checks
/// that every one succeeds and that the connection's task is gone while parked.
async fn park_between_requests(c: &mut HttpClient, path: &str, times: usize) {
    for _ in 0..times {
        let r = c.get(path).send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        assert_eq!(connection_tasks(), 1, "a live connection has its task");
        c.park_idle().await;
        assert_eq!(connection_tasks(), 0, "a parked connection has no task");
    }
}

#[test]
fn a_parked_connection_carries_the_next_request_on_the_same_socket() {
    let server = start_server(Idle::KeepOpen, None);
    run(|| async {
        let mut c = HttpClient::new(Some(&format!("http://127.0.0.1:{}", server.port)));
        park_between_requests(&mut c, "/park/plain", 4).await;
        // Parking twice, or with nothing live, is harmless.
        c.park_idle().await;
        let r = c.get("/park/plain").send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
    });
    assert_eq!(server.connections(), 1, "one TCP connection throughout");
    assert_eq!(server.requests(), 5);
    assert_eq!(counts("/park/plain"), (5, 0));
}

#[test]
fn a_parked_tls_connection_keeps_its_session() {
    let server = start_server(Idle::KeepOpen, Some(self_signed(&[b"http/1.1"])));
    run(|| async {
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{}", server.port)));
        c.accept_invalid_certs(true);
        park_between_requests(&mut c, "/park/tls", 4).await;
    });
    assert_eq!(server.connections(), 1, "one TLS connection throughout");
    assert_eq!(server.requests(), 4);
    assert_eq!(counts("/park/tls"), (4, 0));
}

#[test]
fn a_server_closing_parked_connections_causes_no_failure() {
    // Closed while parked (after 50 ms idle), and closed right after each response (which
    // the client may notice while parking or only when resuming).
    for (idle, name) in [
        (Duration::from_millis(50), "/park/closed-while-parked"),
        (Duration::ZERO, "/park/closed-at-once"),
    ] {
        let server = start_server(Idle::CloseAfter(idle), None);
        run(|| async {
            let mut c = HttpClient::new(Some(&format!("http://127.0.0.1:{}", server.port)));
            for _ in 0..4 {
                let r = c.get(name).send().await;
                assert_eq!(r.status(), 200, "{:?}", r.error());
                c.park_idle().await;
                // Long enough for the server to have closed it.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        assert_eq!(server.requests(), 4, "{name}");
        assert_eq!(
            server.connections(),
            4,
            "{name}: a new connection each time"
        );
        assert_eq!(counts(name), (4, 0), "{name}");
    }
}

#[test]
fn a_server_closing_a_live_connection_causes_no_failure() {
    // Not parked: the closed connection is found (or its request comes back unsent) when the
    // next request wants it, and that request goes out on a new one.
    let server = start_server(Idle::CloseAfter(Duration::ZERO), None);
    run(|| async {
        let mut c = HttpClient::new(Some(&format!("http://127.0.0.1:{}", server.port)));
        for _ in 0..4 {
            let r = c.get("/park/live-closed").send().await;
            assert_eq!(r.status(), 200, "{:?}", r.error());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!(server.requests(), 4);
    assert_eq!(server.connections(), 4, "a new connection each time");
    assert_eq!(counts("/park/live-closed"), (4, 0));
}

#[test]
fn a_tls_server_closing_parked_connections_causes_no_failure() {
    let config = self_signed(&[b"http/1.1"]);
    let server = start_server(Idle::CloseAfter(Duration::from_millis(50)), Some(config));
    run(|| async {
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{}", server.port)));
        c.accept_invalid_certs(true);
        for _ in 0..3 {
            let r = c.get("/park/tls-closed").send().await;
            assert_eq!(r.status(), 200, "{:?}", r.error());
            c.park_idle().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!(server.requests(), 3);
    assert_eq!(server.connections(), 3);
    assert_eq!(counts("/park/tls-closed"), (3, 0));
}

#[test]
fn http2_connections_are_not_parked() {
    let server = start_server(Idle::KeepOpen, Some(self_signed(&[b"h2", b"http/1.1"])));
    run(|| async {
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{}", server.port)));
        c.accept_invalid_certs(true);
        for _ in 0..3 {
            let r = c.get("/park/h2").send().await;
            assert_eq!(r.status(), 200, "{:?}", r.error());
            let live = connection_tasks();
            assert!(live >= 1, "an HTTP/2 connection runs in tasks of its own");
            c.park_idle().await;
            assert_eq!(connection_tasks(), live, "parking leaves HTTP/2 alone");
        }
    });
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 3);
    assert_eq!(counts("/park/h2"), (3, 0));
}
