//! The HTTP client that Hopper user code calls, Locust's `HttpSession` translated.
//!
//! Every user owns one [`HttpClient`]: keep-alive HTTP/1.1 connections on hyper (one per
//! target authority, so a user behaves like one browser tab), a cookie jar, and a base URL
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

mod client;
mod conn;
mod cookies;
mod drain;
pub mod errors;
mod response;
mod url;

pub use client::{ClientConfig, HttpClient, RequestBuilder};
pub use drain::Drain;
pub use http::{HeaderMap, HeaderValue, Method, StatusCode};
pub use response::Response;
pub use url::{BaseUrl, UrlError};
