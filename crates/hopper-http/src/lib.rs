//! The HTTP client that Hopper user code calls, Locust's `HttpSession` translated.
//!
//! Every user owns one [`HttpClient`]: keep-alive connections on hyper (one per target
//! authority, so a user behaves like one browser tab; HTTP/1.1, or HTTP/2 over TLS when the
//! server offers it), a cookie jar, and a base URL
//! taken from the user class's host. Each request is timed from before the connection is
//! used until the body has been read, named the way Locust names it (path and query, or a
//! `name` override), judged with Locust's rule (status >= 400 and connection errors fail,
//! with Locust's error texts so error keys match) and recorded into `hopper-stats`.
//!
//! ```no_run
//! # async fn demo(client: &mut hopper_http::HttpClient) {
//! let r = client.get("/products?page=1").name("/products?page=[n]").send().await;
//! assert!(r.ok());
//! let mut r = client.post("/login").json(&serde_json::json!({"username": "a"})).catch_response().send().await;
//! if !r.text().contains("token") {
//!     r.failure("no token in the login response");
//! }
//! # }
//! ```
//!
//! `https://` hosts are verified against Mozilla's root certificates (built in) unless the
//! user says otherwise, typically in `on_start`:
//!
//! ```no_run
//! # fn demo(client: &mut hopper_http::HttpClient, ca_pem: &str, cert: &str, key: &str) {
//! client.add_root_certificate(ca_pem); // a test environment's own CA
//! client.client_certificate(cert, key); // mutual TLS
//! client.http1_only(true); // no HTTP/2 even if the server offers it
//! client.accept_invalid_certs(true); // requests' verify=False
//! # }
//! ```
//!
//! Compressed responses (gzip, deflate, br) are decoded as they arrive, and the decoded
//! length is what is recorded; uploads stream files from disk ([`RequestBuilder::body_file`],
//! [`Multipart`]); a forward proxy is set with [`HttpClient::proxy`]; and
//! [`Response::timings`] splits a request's time into connect, TLS, time to first byte and
//! total. Before a long wait the user loop parks the user's idle HTTP/1.1 connections
//! ([`HttpClient::park_idle`]): only their sockets are kept, so idle users cost little
//! memory. `docs/http.md` lists every feature beside its Locust equivalent.

mod body;
mod client;
mod conn;
mod cookies;
mod decode;
mod drain;
pub mod errors;
mod park;
mod proxy;
mod response;
mod tcp_or;
mod timings;
mod tls;
mod url;
pub mod ws;

pub use body::{Multipart, Part};
pub use client::{ClientConfig, HttpClient, RequestBuilder};
pub use drain::Drain;
pub use http::{HeaderMap, HeaderValue, Method, StatusCode};
pub use proxy::Proxy;
/// Regular expressions for [`Response::regex`] (the lean `regex-lite` engine).
pub use regex_lite::Regex;
pub use response::{CheckError, Response};
pub use timings::Timings;
pub use tls::TlsOptions;
pub use url::{is_non_http_host, BaseUrl, UrlError};
pub use ws::{WebSocket, WsError};
