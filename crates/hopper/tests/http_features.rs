//! The HTTP client's features against real servers on 127.0.0.1: compressed responses
//! (decoded, recorded by decoded length, corrupt ones failing with requests' text), forward
//! proxies (absolute form for http://, CONNECT tunnels for https://), uploads streamed from
//! disk (raw and multipart, re-sent on 307), the timing breakdown, the `http_features`
//! example over HTTP, HTTPS with HTTP/2 and a proxy, and fifty users uploading 20 MB each
//! in bounded memory.
//!
//! Statistics are process-wide, so each in-process test uses request names of its own and
//! looks only at those.

mod common;

use bytes::Bytes;
use common::http_servers::{self_signed_tls, start_proxy, start_tls_front};
use common::*;
use hopper::demo_target::Counters;
use hopper::HttpClient;
use hopper_http::{Multipart, Part};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// (requests, failures, total recorded length) for this name and method.
fn entry(name: &str, method: &str) -> (u64, u64, u64) {
    let s = synced_stats();
    let e = s
        .entries
        .get(&(name.to_string(), method.to_string()))
        .unwrap_or_else(|| panic!("no entry for {method} {name}"));
    (e.num_requests, e.num_failures, e.total_content_length)
}

/// A port with nothing listening: bound, noted, closed.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

// -------------------------------------------------------------------------------------------
// Compressed responses
// -------------------------------------------------------------------------------------------

#[test]
fn compressed_responses_are_decoded_and_recorded_by_decoded_length() {
    let plain_len = Arc::new(Mutex::new(0u64));
    let seen_len = plain_len.clone();
    with_demo_target(|mut c, _| async move {
        let plain = c
            .get("/compressed?enc=identity")
            .name("/compressed-identity")
            .send()
            .await;
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.header("content-encoding"), None);
        let plain_body = plain.bytes().clone();
        *seen_len.lock().unwrap() = plain_body.len() as u64;
        for enc in ["gzip", "deflate", "br"] {
            let r = c
                .get(format!("/compressed?enc={enc}"))
                .name(format!("/compressed-{enc}"))
                .send()
                .await;
            assert_eq!(r.status(), 200, "{enc}: {:?}", r.error());
            // The header stays as the server sent it; the body is decoded.
            assert_eq!(r.header("content-encoding"), Some(enc));
            assert!(r.bytes() == &plain_body, "{enc}");
            assert_eq!(r.json_str("/0/name").unwrap(), "Hopper T-shirt");
            // Counted without being kept: decoded as it streams, the same length recorded.
            let r = c
                .get(format!("/compressed?enc={enc}"))
                .name(format!("/compressed-{enc}-discarded"))
                .discard_body()
                .send()
                .await;
            assert!(r.ok() && r.bytes().is_empty(), "{enc}: {:?}", r.error());
        }
        // Hopper offers gzip, deflate and br: the target picks br.
        let r = c
            .get("/compressed")
            .name("/compressed-negotiated")
            .send()
            .await;
        assert_eq!(r.header("content-encoding"), Some("br"));
        // A request's own Accept-Encoding wins.
        let r = c
            .get("/compressed")
            .header("Accept-Encoding", "gzip")
            .name("/compressed-negotiated")
            .send()
            .await;
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let r = c
            .get("/compressed")
            .header("Accept-Encoding", "identity")
            .name("/compressed-negotiated")
            .send()
            .await;
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.bytes().len() as u64, *seen_len.lock().unwrap());
    });
    let plain = *plain_len.lock().unwrap();
    assert!(plain > 5_000, "{plain}");
    assert_eq!(entry("/compressed-identity", "GET"), (1, 0, plain));
    for enc in ["gzip", "deflate", "br"] {
        assert_eq!(entry(&format!("/compressed-{enc}"), "GET"), (1, 0, plain));
        assert_eq!(
            entry(&format!("/compressed-{enc}-discarded"), "GET"),
            (1, 0, plain)
        );
    }
    assert_eq!(entry("/compressed-negotiated", "GET"), (3, 0, 3 * plain));
}

/// A keep-alive server that answers every request by its path with fixed bytes, and counts
/// its connections.
async fn raw_server(answer: fn(&str) -> Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut reader = BufReader::new(sock);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                    // GET requests only: no body to skip.
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    if reader.get_mut().write_all(&answer(&path)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, connections)
}

fn encoded_answer(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_body_that_does_not_decode_is_a_recorded_failure_and_the_connection_stays() {
    with_demo_target(|_, _| async move {
        let (base, connections) = raw_server(|path| match path {
            "/not-gzip" => encoded_answer("gzip", b"this was never gzip"),
            "/cut-br" => {
                let full = brotli(&[b'x'; 5000]);
                encoded_answer("br", &full[..full.len() / 2])
            }
            "/cut-gzip" => {
                let full = gzip(b"a gzip body whose trailer is missing");
                encoded_answer("gzip", &full[..full.len() - 8])
            }
            _ => encoded_answer("gzip", &gzip(b"fine")),
        })
        .await;
        let mut c = HttpClient::new(Some(&base));
        let r = c.get("/not-gzip").send().await;
        assert_eq!(r.status(), 0);
        assert_eq!(
            r.error(),
            Some(
                "ContentDecodingError(DecodeError('Received response with content-encoding: \
                 gzip, but failed to decode it.', error('invalid gzip header')))"
            )
        );
        let r = c.get("/cut-br").discard_body().send().await;
        assert_eq!(r.status(), 0);
        assert!(
            r.error()
                .unwrap()
                .ends_with("error('brotli stream cut short')))"),
            "{:?}",
            r.error()
        );
        let r = c.get("/cut-gzip").send().await;
        assert!(
            r.error()
                .unwrap()
                .starts_with("ContentDecodingError(DecodeError("),
            "{:?}",
            r.error()
        );
        // The body was read to its end: the same connection serves the next request.
        let r = c.get("/fine").send().await;
        assert_eq!((r.status(), &r.bytes()[..]), (200, &b"fine"[..]));
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    });
    assert_eq!(entry("/not-gzip", "GET"), (1, 1, 0));
    assert_eq!(entry("/cut-br", "GET"), (1, 1, 0));
    assert_eq!(entry("/cut-gzip", "GET"), (1, 1, 0));
    assert_eq!(entry("/fine", "GET"), (1, 0, 4));
}

// -------------------------------------------------------------------------------------------
// Proxies
// -------------------------------------------------------------------------------------------

#[test]
fn http_targets_go_through_the_proxy_in_absolute_form_on_one_connection() {
    with_demo_target(|_, base| async move {
        // base64("user:p@ss")
        let (proxy, log) = start_proxy(Some("Basic dXNlcjpwQHNz")).await;
        let proxy_with_creds = proxy.replace("http://", "http://user:p%40ss@");
        let mut c = HttpClient::new(Some(&base));
        c.proxy(&proxy_with_creds);
        for _ in 0..3 {
            let r = c.get("/fast").name("/proxied-fast").send().await;
            assert_eq!(
                (r.status(), r.text().as_ref()),
                (200, "ok"),
                "{:?}",
                r.error()
            );
        }
        let r = c
            .post("/upload")
            .body("twelve bytes")
            .name("/proxied-upload")
            .send()
            .await;
        assert_eq!(r.json_field("/bytes").unwrap(), 12);
        let seen = log.seen();
        assert_eq!(seen.len(), 4, "{seen:?}");
        for s in &seen[..3] {
            assert_eq!(s.method, "GET");
            assert_eq!(s.uri, format!("{base}/fast"));
            assert_eq!(s.proxy_authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        }
        assert_eq!(seen[3].uri, format!("{base}/upload"));
        // Kept alive: one connection to the proxy for this target.
        assert_eq!(log.connections(), 1);

        // Without credentials the proxy answers 407 itself: a response like any other.
        let mut c = HttpClient::new(Some(&base));
        c.proxy(&proxy);
        let r = c.get("/fast").name("/proxied-no-creds").send().await;
        assert_eq!(r.status(), 407);

        // The target served what went through the proxy, and nothing else.
        c.config_mut().proxy = None;
        let counted = c.get("/__counters").send().await;
        assert_eq!(counted.json_field("/total").unwrap(), 4);
        assert_eq!(counted.json_field("/upload_bytes").unwrap(), 12);
        assert_eq!(counted.json_field("/requests/0/route").unwrap(), "/fast");
        assert_eq!(counted.json_field("/requests/0/count").unwrap(), 3);
    });
    assert_eq!(entry("/proxied-fast", "GET"), (3, 0, 6));
    assert_eq!(entry("/proxied-upload", "POST").0, 1);
    assert_eq!(
        error_texts("/proxied-no-creds"),
        ["HTTPError('407 Client Error: Proxy Authentication Required for url: /proxied-no-creds')"]
    );
}

#[test]
fn https_targets_go_through_a_connect_tunnel_with_http2_inside() {
    with_demo_target(|mut plain, base| async move {
        let (port, versions) =
            start_tls_front(addr_of(&base), self_signed_tls(&[b"h2", b"http/1.1"])).await;
        let (proxy, log) = start_proxy(None).await;
        let mut c = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        c.accept_invalid_certs(true).proxy(&proxy);
        let first = c.get("/products/2").name("/tunnel-product").send().await;
        assert_eq!(first.status(), 200, "{:?}", first.error());
        assert_eq!(first.json_str("/name").unwrap(), "Locust mug");
        let t = first.timings();
        assert!(t.connect.is_some() && t.tls.is_some(), "{t:?}");
        let again = c
            .get("/compressed?enc=br")
            .name("/tunnel-compressed")
            .send()
            .await;
        assert_eq!(again.status(), 200, "{:?}", again.error());
        assert_eq!(again.json_str("/1/name").unwrap(), "Locust mug");
        let t = again.timings();
        assert_eq!((t.connect, t.tls), (None, None), "reused: {t:?}");
        // One tunnel, asked for the target's host and port, carrying both requests as HTTP/2.
        let seen = log.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].uri.as_str()),
            ("CONNECT", format!("127.0.0.1:{port}").as_str())
        );
        assert_eq!(log.connections(), 1);
        assert_eq!(*versions.lock().unwrap(), [http::Version::HTTP_2; 2]);
        // The target counted what went through the tunnel (read over plain HTTP).
        let counted = plain.get("/__counters").send().await;
        assert_eq!(counted.json_field("/total").unwrap(), 2);
    });
    assert_eq!(entry("/tunnel-product", "GET").0, 1);
    assert_eq!(entry("/tunnel-compressed", "GET").1, 0);
}

#[test]
fn proxy_failures_are_recorded_with_clear_texts() {
    with_demo_target(|_, base| async move {
        let refused = format!("http://127.0.0.1:{}", closed_port());
        for target in [base.clone(), "https://127.0.0.1:9".to_string()] {
            let mut c = HttpClient::new(Some(&target));
            c.proxy(&refused);
            let r = c.get("/x").name("/proxy-refused").send().await;
            assert_eq!(r.status(), 0);
        }
        // A tunnel the proxy refuses.
        let (proxy, _) = start_proxy(Some("Basic secret")).await;
        let mut c = HttpClient::new(Some("https://127.0.0.1:9"));
        c.proxy(&proxy);
        let r = c.get("/x").name("/proxy-407").send().await;
        assert_eq!(r.status(), 0);
        // A proxy URL that cannot be used.
        let mut c = HttpClient::new(Some(&base));
        c.proxy("http://:3128");
        let r = c.get("/fast").name("/proxy-invalid").send().await;
        assert_eq!(r.status(), 0);
        c.proxy("socks5://127.0.0.1:1080");
        let r = c.get("/fast").name("/proxy-socks").send().await;
        assert_eq!(r.status(), 0);
        // And back to a direct connection.
        c.config_mut().proxy = None;
        assert_eq!(
            c.get("/fast").name("/proxy-none").send().await.status(),
            200
        );
    });
    assert_eq!(entry("/proxy-refused", "GET"), (2, 2, 0));
    assert_eq!(
        error_texts("/proxy-refused"),
        ["ProxyError('Cannot connect to proxy.', ConnectionRefusedError(111, 'Connection refused'))"]
    );
    assert_eq!(
        error_texts("/proxy-407"),
        ["ProxyError('Unable to connect to proxy', OSError('Tunnel connection failed: 407 Proxy Authentication Required'))"]
    );
    assert_eq!(
        error_texts("/proxy-invalid"),
        ["InvalidProxyURL('Please check proxy URL. It is malformed and could be missing the host.')"]
    );
    assert_eq!(
        error_texts("/proxy-socks"),
        ["InvalidProxyURL('Hopper speaks to proxies in plain HTTP only: use http://, not socks5://127.0.0.1:1080')"]
    );
    assert_eq!(entry("/proxy-none", "GET"), (1, 0, 2));
}

// -------------------------------------------------------------------------------------------
// Uploads
// -------------------------------------------------------------------------------------------

/// A file of `size` bytes with a pattern that shows misplaced bytes.
fn pattern_file(dir: &TempDir, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// One part as the receiving server parsed it: name, file name, content type, data.
type ParsedPart = (String, Option<String>, Option<String>, Vec<u8>);

/// What the upload server saw: `"<path> <bytes>"` per request, and the parts of each
/// multipart request.
#[derive(Default)]
struct Uploads {
    requests: Mutex<Vec<String>>,
    forms: Mutex<Vec<Vec<ParsedPart>>>,
}

/// A server that parses multipart bodies with `multer` (`POST /parts`), counts raw ones
/// (`POST /raw`), and answers `POST /r307?to=...` with a 307 to `to` after reading the body.
async fn upload_server() -> (String, Arc<Uploads>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let uploads = Arc::new(Uploads::default());
    let seen = uploads.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let seen = seen.clone();
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let seen = seen.clone();
                async move { Ok::<_, Infallible>(upload_answer(req, &seen).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    (base, uploads)
}

async fn upload_answer(
    req: hyper::Request<Incoming>,
    seen: &Uploads,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
    if path == "/parts" {
        let boundary = multer::parse_boundary(&content_type).expect("a multipart boundary");
        let mut form = multer::Multipart::new(
            http_body_util::BodyDataStream::new(req.into_body()),
            boundary,
        );
        let mut parts = Vec::new();
        let mut total = 0;
        while let Some(field) = form
            .next_field()
            .await
            .expect("a well-formed multipart body")
        {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let ct = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.expect("the part's data").to_vec();
            total += data.len();
            parts.push((name, filename, ct, data));
        }
        seen.requests
            .lock()
            .unwrap()
            .push(format!("/parts {total}"));
        seen.forms.lock().unwrap().push(parts);
        return resp;
    }
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    seen.requests
        .lock()
        .unwrap()
        .push(format!("{path} {bytes}"));
    if path == "/r307" {
        *resp.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
        let to = query.strip_prefix("to=").unwrap_or("/raw").to_string();
        resp.headers_mut()
            .insert(http::header::LOCATION, to.parse().unwrap());
    }
    resp
}

/// The multipart body's length for these parts with a boundary of 32 characters (the
/// boundary's text does not matter, only its length).
fn multipart_len(parts: &[(&str, Option<&str>, Option<&str>, usize)]) -> u64 {
    let b = "b".repeat(32);
    let mut len = 0;
    for (name, filename, ct, data) in parts {
        let mut head = format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"");
        if let Some(f) = filename {
            head += &format!("; filename=\"{f}\"");
        }
        head += "\r\n";
        if let Some(ct) = ct {
            head += &format!("Content-Type: {ct}\r\n");
        }
        head += "\r\n";
        len += head.len() + data + 2;
    }
    (len + format!("--{b}--\r\n").len()) as u64
}

#[test]
fn file_bodies_and_multipart_forms_arrive_whole() {
    let dir = TempDir::new("uploads");
    let (big, big_data) = pattern_file(&dir, "big.bin", 3 * 1024 * 1024 + 17);
    let (small, small_data) = pattern_file(&dir, "small.csv", 1000);
    let counted: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let seen = counted.clone();
    with_demo_target(|mut c, _| async move {
        // A raw body from disk: the target counts exactly the file's size.
        let r = c
            .post("/upload")
            .body_file(&big)
            .name("/upload-file")
            .send()
            .await;
        assert_eq!(
            r.json_field("/bytes").unwrap(),
            big_data.len() as u64,
            "{:?}",
            r.error()
        );
        // A multipart form: text, a file from disk, bytes from memory.
        let form = Multipart::new()
            .text("title", "report")
            .file("data", &small)
            .part(
                Part::bytes("notes", "some notes")
                    .filename("n.txt")
                    .content_type("text/plain"),
            );
        let r = c
            .post("/upload")
            .multipart(form)
            .name("/upload-multipart")
            .send()
            .await;
        let expected = multipart_len(&[
            ("title", None, None, 6),
            ("data", Some("small.csv"), None, small_data.len()),
            ("notes", Some("n.txt"), Some("text/plain"), 10),
        ]);
        assert_eq!(r.json_field("/bytes").unwrap(), expected, "{:?}", r.error());
        let counters: serde_json::Value = c.get("/__counters").send().await.json().unwrap();
        seen.lock()
            .unwrap()
            .push(("target".into(), counters["upload_bytes"].as_u64().unwrap()));
        seen.lock()
            .unwrap()
            .push(("expected".into(), big_data.len() as u64 + expected));

        // The same form parsed by multer: every part intact, in order.
        let (upload_base, uploads) = upload_server().await;
        let form = Multipart::new()
            .text("title", "report")
            .file("data", &big)
            .part(Part::file("small", &small).content_type("text/csv"))
            .bytes("blob", vec![0u8, 1, 2, 255]);
        let r = c
            .post(format!("{upload_base}/parts"))
            .multipart(form)
            .name("/parts-direct")
            .send()
            .await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        let forms = uploads.forms.lock().unwrap().clone();
        let want: Vec<ParsedPart> = vec![
            ("title".into(), None, None, b"report".to_vec()),
            (
                "data".into(),
                Some("big.bin".into()),
                None,
                big_data.clone(),
            ),
            (
                "small".into(),
                Some("small.csv".into()),
                Some("text/csv".into()),
                small_data.clone(),
            ),
            ("blob".into(), Some("blob".into()), None, vec![0, 1, 2, 255]),
        ];
        assert_eq!(forms.len(), 1);
        let summary: Vec<_> = forms[0]
            .iter()
            .map(|p| (&p.0, &p.1, &p.2, p.3.len()))
            .collect();
        assert!(forms[0] == want, "parts differ: {summary:?}");
    });
    // The target's upload byte counter agrees with both answers.
    let counted = counted.lock().unwrap().clone();
    assert_eq!(counted[0].1, counted[1].1, "{counted:?}");
    assert_eq!(entry("/upload-file", "POST").0, 1);
    assert_eq!(entry("/upload-multipart", "POST").1, 0);
}

#[test]
fn a_307_redirect_sends_the_file_again() {
    let dir = TempDir::new("redirect-upload");
    let (file, data) = pattern_file(&dir, "again.bin", 200_000);
    with_demo_target(|_, _| async move {
        let (base, uploads) = upload_server().await;
        let mut c = HttpClient::new(Some(&base));
        let r = c.post("/r307?to=/raw").body_file(&file).send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        let form = Multipart::new().file("data", &file).text("after", "file");
        let r = c.post("/r307?to=/parts").multipart(form).send().await;
        assert_eq!(r.status(), 200, "{:?}", r.error());
        let n = data.len();
        let requests = uploads.requests.lock().unwrap().clone();
        assert_eq!(requests[..2], [format!("/r307 {n}"), format!("/raw {n}")]);
        assert!(requests[2].starts_with("/r307 ") && requests[3].starts_with("/parts "));
        assert_eq!(requests[3], format!("/parts {}", n + 4));
        let forms = uploads.forms.lock().unwrap().clone();
        assert!(forms[0][0].3 == data);
        assert_eq!(forms[0][1].3, b"file");
    });
}

#[test]
fn a_missing_upload_file_is_a_recorded_failure_naming_it() {
    let dir = TempDir::new("missing-upload");
    let missing = dir.path().join("no-such-file.bin");
    let text = format!(
        "FileNotFoundError(2, \"No such file or directory: '{}'\")",
        missing.display()
    );
    let counters: Arc<Mutex<u64>> = Arc::default();
    let seen = counters.clone();
    with_demo_target(|mut c, _| async move {
        let r = c
            .post("/upload")
            .body_file(&missing)
            .name("/missing-file")
            .send()
            .await;
        assert_eq!(r.status(), 0);
        let form = Multipart::new().text("a", "b").file("f", &missing);
        let r = c
            .post("/upload")
            .multipart(form)
            .name("/missing-part")
            .send()
            .await;
        assert_eq!(r.status(), 0);
        let doc: serde_json::Value = c.get("/__counters").send().await.json().unwrap();
        *seen.lock().unwrap() = doc["total"].as_u64().unwrap();
    });
    assert_eq!(entry("/missing-file", "POST"), (1, 1, 0));
    assert_eq!(error_texts("/missing-file"), error_texts("/missing-part"));
    assert_eq!(error_texts("/missing-part"), [text]);
    // Nothing was sent.
    assert_eq!(*counters.lock().unwrap(), 0);
}

// -------------------------------------------------------------------------------------------
// Timings and bad input
// -------------------------------------------------------------------------------------------

#[test]
fn timings_split_connect_tls_and_first_byte() {
    with_demo_target(|mut c, base| async move {
        let first = c.get("/slow?ms=20").name("/timed").send().await;
        let t = first.timings();
        assert!(t.connect.is_some(), "{t:?}");
        assert_eq!(t.tls, None);
        let ttfb = t.ttfb.expect("a response head");
        assert!(ttfb <= t.total && t.total == first.response_time(), "{t:?}");
        let second = c.get("/fast").name("/timed").send().await;
        let t = second.timings();
        assert_eq!((t.connect, t.tls), (None, None), "{t:?}");
        assert!(t.ttfb.unwrap() <= t.total);
        c.close_connections();
        assert!(c
            .get("/fast")
            .name("/timed")
            .send()
            .await
            .timings()
            .connect
            .is_some());

        // HTTPS: the handshake too, on the first request only.
        let (port, _) = start_tls_front(addr_of(&base), self_signed_tls(&[b"h2"])).await;
        let mut tls = HttpClient::new(Some(&format!("https://127.0.0.1:{port}")));
        tls.accept_invalid_certs(true);
        let t = tls.get("/fast").name("/timed-tls").send().await.timings();
        assert!(t.connect.is_some() && t.tls.is_some(), "{t:?}");
        assert!(t.ttfb.unwrap() <= t.total);
        let t = tls.get("/fast").name("/timed-tls").send().await.timings();
        assert_eq!((t.connect, t.tls), (None, None), "{t:?}");

        // No answer: no time to first byte.
        let r = c
            .get(format!("http://127.0.0.1:{}/", closed_port()))
            .name("/timed-refused")
            .send()
            .await;
        assert_eq!(r.timings().ttfb, None);
    });
    assert_eq!(entry("/timed", "GET").1, 0);
    assert_eq!(entry("/timed-tls", "GET"), (2, 0, 4));
}

#[test]
fn invalid_urls_are_recorded_failures() {
    with_demo_target(|mut c, _| async move {
        let r = c
            .get("http://127.0.0.1:notaport/x")
            .name("/bad-port")
            .send()
            .await;
        assert_eq!(r.status(), 0);
        // Only http(s):// URLs bypass the base URL (as in Locust), so without one.
        let mut no_base = HttpClient::new(None);
        let r = no_base
            .get("ftp://127.0.0.1/x")
            .name("/bad-scheme")
            .send()
            .await;
        assert_eq!(r.status(), 0);
    });
    assert_eq!(
        error_texts("/bad-port"),
        ["InvalidURL(\"Invalid URL 'http://127.0.0.1:notaport/x'\")"]
    );
    assert_eq!(
        error_texts("/bad-scheme"),
        ["InvalidSchema(\"No connection adapters were found for 'ftp://127.0.0.1/x'\")"]
    );
}

// -------------------------------------------------------------------------------------------
// The example program
// -------------------------------------------------------------------------------------------

/// Hopper's request names mapped to the target's routes.
const EXAMPLE_ROUTES: [(&str, &str); 4] = [
    ("/compressed?enc=[enc]", "/compressed"),
    ("/upload (multipart)", "/upload"),
    ("/upload (file)", "/upload"),
    ("/products/[id]", "/products/{id}"),
];

/// Runs `http_features` for a few seconds against `host` with `env`, and checks its table
/// against the target's counters: every name present, the same requests per method and
/// route, no failures, and one `TTFB /products` per `GET /products`.
fn run_example(host: &str, env: &[(&str, &str)], target: Target) -> (Output, Arc<Counters>) {
    let dir = TempDir::new("http-features");
    let mut cmd = command(&example_bin("http_features"), dir.path());
    cmd.args(["-H", host, "--headless", "-u", "5", "-r", "5", "-t", "4s"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd);
    let counters = target.finish();
    out.assert_code(0);
    let summary = out.summary();
    let mut names = summary.names();
    names.sort();
    assert_eq!(
        names,
        [
            "GET /account",
            "GET /compressed?enc=[enc]",
            "GET /products",
            "GET /products/[id]",
            "GET /redirect",
            "GET /slow",
            "POST /login",
            "POST /upload (file)",
            "POST /upload (multipart)",
            "TTFB /products",
        ],
        "{}",
        out.dump()
    );
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
    let mut hopper: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in summary.rows.iter().filter(|r| r.method != "TTFB") {
        *hopper
            .entry((
                row.method.clone(),
                route_for(&EXAMPLE_ROUTES, &row.name).to_string(),
            ))
            .or_default() += row.reqs;
    }
    let target: BTreeMap<(String, String), u64> = target_by_route(&counters.snapshot())
        .into_iter()
        .map(|(k, (n, errors))| {
            assert_eq!(errors, 0, "{k:?}\n{}", out.dump());
            (k, n)
        })
        .collect();
    assert_eq!(hopper, target, "{}", out.dump());
    assert_eq!(
        summary.row("TTFB", "/products").unwrap().reqs,
        summary.row("GET", "/products").unwrap().reqs,
        "{}",
        out.dump()
    );
    assert_eq!(summary.row("POST", "/login").unwrap().reqs, 5);
    assert!(counters.upload_bytes() > 0);
    (out, counters)
}

#[test]
fn example_counts_match_the_target() {
    let target = Target::start();
    let url = target.url().to_string();
    run_example(&url, &[], target);
}

#[test]
fn example_over_https_with_http2() {
    let target = Target::start();
    let backend = addr_of(target.url());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (port, versions) = rt.block_on(start_tls_front(
        backend,
        self_signed_tls(&[b"h2", b"http/1.1"]),
    ));
    let (out, counters) = run_example(
        &format!("https://127.0.0.1:{port}"),
        &[("HTTP_FEATURES_INSECURE", "1")],
        target,
    );
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len() as u64, counters.total(), "{}", out.dump());
    assert!(
        versions.iter().all(|v| *v == http::Version::HTTP_2),
        "{versions:?}"
    );
}

#[test]
fn example_through_a_proxy() {
    let target = Target::start();
    let url = target.url().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (proxy, log) = rt.block_on(start_proxy(None));
    let (out, counters) = run_example(&url, &[("HTTP_FEATURES_PROXY", &proxy)], target);
    let seen = log.seen();
    assert_eq!(seen.len() as u64, counters.total(), "{}", out.dump());
    assert!(
        seen.iter().all(|s| s.uri.starts_with(&format!("{url}/"))),
        "{seen:?}"
    );
    // Each user keeps its connection to the proxy.
    assert!(log.connections() <= 5, "{} connections", log.connections());
}

// -------------------------------------------------------------------------------------------
// Memory: 50 users × 20 MB
// -------------------------------------------------------------------------------------------

/// The peak resident set (VmHWM, kB) of a running process, `None` once it has exited.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn write_file(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let block: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    for _ in 0..size / block.len() as u64 {
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn fifty_users_upload_20_mb_each_in_bounded_memory() {
    const SIZE: u64 = 20_000_000;
    const LIMIT_KB: u64 = 256 * 1024;
    let dir = TempDir::new("upload-20mb");
    let file = dir.path().join("upload.bin");
    write_file(&file, SIZE);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), SIZE);
    let target = Target::start();
    let mut cmd = command(&example_bin("upload"), dir.path());
    cmd.env("UPLOAD_FILE", &file).args([
        "-H",
        target.url(),
        "--headless",
        "-u",
        "50",
        "-r",
        "50",
        "-t",
        "2s",
        // Uploads under way when the time is up finish, so every one is counted whole.
        "-s",
        "40",
    ]);
    let running = Running::spawn(cmd);
    let pid = running.pid();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = running.wait();
    let peak_kb = watcher.join().unwrap();
    let counters = target.finish();
    out.assert_code(0);
    let summary = out.summary();
    let row = summary.row("POST", "/upload").expect("an upload row");
    assert!(
        row.reqs >= 50,
        "every user finished an upload\n{}",
        out.dump()
    );
    assert_eq!(row.fails, 0, "{}", out.dump());
    assert_eq!(counters.get("POST", "/upload", 200), row.reqs);
    assert_eq!(counters.upload_bytes(), row.reqs * SIZE);
    assert!(
        peak_kb > 0 && peak_kb < LIMIT_KB,
        "peak RSS {peak_kb} kB for {} uploads of {SIZE} bytes",
        row.reqs
    );
    eprintln!(
        "{} uploads of {SIZE} bytes by 50 users: peak RSS {} MB",
        row.reqs,
        peak_kb / 1024
    );
}
