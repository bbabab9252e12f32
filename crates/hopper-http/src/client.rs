//! [`HttpClient`] and its [`RequestBuilder`]: what user code calls.

use crate::body::{Body, Multipart, Segment};
use crate::conn::{Connections, ReqBody};
use crate::cookies::CookieJar;
use crate::decode::Decoder;
use crate::drain::Drain;
use crate::errors;
use crate::proxy::{Proxy, ProxyTarget};
use crate::response::{self, Check, Outcome, Pending, Response};
use crate::timings::Timings;
use crate::tls::TlsOptions;
use crate::url::{self, BaseUrl, Target, UrlError};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every request offers unless it sets `Accept-Encoding` itself: the codings Hopper
/// decodes (FastHttpUser's value; requests offers the same when brotli is installed).
const ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("gzip, deflate, br");

/// Per-user client settings, as `requests.Session` attributes are in Locust.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Whole-request timeout (connect, send, body). `None` waits forever, like `requests`.
    pub timeout: Option<Duration>,
    /// Redirects followed before giving up (`requests` allows 30).
    pub max_redirects: usize,
    /// Headers sent with every request unless the request sets them itself.
    pub default_headers: HeaderMap,
    /// Certificate checks, client certificate and HTTP/2 for `https://` targets.
    pub tls: TlsOptions,
    /// The forward proxy every request goes through (see [`HttpClient::proxy`]); `None`
    /// connects directly. Environment variables such as `HTTPS_PROXY` are never read
    /// (Locust's `trust_env=False`).
    pub proxy: Option<Proxy>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: None,
            max_redirects: 30,
            default_headers: HeaderMap::new(),
            tls: TlsOptions::default(),
            proxy: None,
        }
    }
}

/// One user's HTTP client: base URL, keep-alive connections and cookies.
///
/// Every user holds one for its whole life, idle or not, so what users share is shared
/// rather than copied: the parsed base URL and the settings are behind `Arc`s (users of one
/// class and host point at the same ones), and a client is about 200 bytes plus its
/// connections' sockets. `tests` in this file pin the size.
pub struct HttpClient {
    /// `Arc`: the same for all users of a host; the rare error is kept inline.
    base: Result<Option<Arc<BaseUrl>>, UrlError>,
    conns: Connections,
    cookies: CookieJar,
    drain: Drain,
    /// Settings that apply to every request of this user; shared until changed (copy on
    /// write, see [`HttpClient::config_mut`]).
    pub(crate) config: Arc<ClientConfig>,
}

impl HttpClient {
    /// The shortest wait before which the user loop parks the connections
    /// ([`HttpClient::park_idle`]). Shorter waits keep hyper's live connection: parking and
    /// resuming costs 5–8 µs of CPU, 10–20 % of what a small request costs, and a user that
    /// waits less than this sends requests often enough for that CPU to be worth more than
    /// the memory parking saves.
    pub const PARK_WAIT: Duration = Duration::from_secs(1);

    /// A client whose relative paths resolve against `host` (Locust's `host` attribute).
    /// An invalid host is reported on each request as a failure with `requests`' text.
    pub fn new(host: Option<&str>) -> HttpClient {
        HttpClient::with_config(host, Arc::default())
    }

    /// A client with these settings, shared with other clients until one changes its own
    /// (the runner gives every user of a class the class's settings this way).
    pub fn with_config(host: Option<&str>, config: Arc<ClientConfig>) -> HttpClient {
        HttpClient {
            base: shared_base(host),
            conns: Connections::default(),
            cookies: CookieJar::default(),
            drain: Drain::default(),
            config,
        }
    }

    /// The settings that apply to every request of this user.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes this user's settings (only this user's: settings shared with other users are
    /// copied first).
    pub fn config_mut(&mut self) -> &mut ClientConfig {
        Arc::make_mut(&mut self.config)
    }

    /// The handle the runner uses to let this client's requests in flight finish when the
    /// user is killed (see [`Drain`]).
    pub fn drain(&self) -> Drain {
        self.drain.clone()
    }

    /// The base URL, when one is set and valid.
    pub fn base_url(&self) -> Option<&str> {
        self.base
            .as_ref()
            .ok()
            .and_then(|b| b.as_deref())
            .map(|b| b.as_str())
    }

    /// `GET path`.
    pub fn get<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::GET, path)
    }
    /// `POST path`.
    pub fn post<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::POST, path)
    }
    /// `PUT path`.
    pub fn put<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::PUT, path)
    }
    /// `PATCH path`.
    pub fn patch<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::PATCH, path)
    }
    /// `DELETE path`.
    pub fn delete<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::DELETE, path)
    }
    /// `HEAD path`.
    pub fn head<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::HEAD, path)
    }
    /// `OPTIONS path`.
    pub fn options<'a>(&'a mut self, path: impl Into<Cow<'a, str>>) -> RequestBuilder<'a> {
        self.request(Method::OPTIONS, path)
    }

    /// A request with any method.
    pub fn request<'a>(
        &'a mut self,
        method: Method,
        path: impl Into<Cow<'a, str>>,
    ) -> RequestBuilder<'a> {
        // requests' head() does not follow redirects unless asked.
        let follow_redirects = method != Method::HEAD;
        RequestBuilder {
            client: self,
            method,
            path: path.into(),
            name: None,
            headers: HeaderMap::new(),
            query: String::new(),
            body: Body::empty(),
            timeout: None,
            catch_response: false,
            follow_redirects,
            discard_body: false,
            checks: Vec::new(),
            error: None,
        }
    }

    /// Forgets all cookies of this user.
    pub fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// Closes this user's connections (the next request opens a new one).
    pub fn close_connections(&mut self) {
        self.conns.clear();
    }

    /// Parks this user's idle HTTP/1.1 connections before a long wait: each keeps only its
    /// socket (plain TCP or TLS) and gives back hyper's buffers and task, about 17 KB, until
    /// the next request to its origin resumes it on the same TCP connection (no new
    /// connection, no network round trip). A connection the server closes while parked is
    /// replaced on that next request without a failure, as a closed idle one is.
    /// HTTP/2 connections are left as they are.
    ///
    /// The user loop calls this before every wait of [`HttpClient::PARK_WAIT`] or more;
    /// task code that sleeps long between requests of its own may call it too. Parking and
    /// the resumption together cost a few microseconds of CPU.
    pub async fn park_idle(&mut self) {
        // Boxed: the future lives only while parking, and the user loop's own future (which
        // holds it across a wait for as long as the user lives) stays small.
        Box::pin(self.conns.park()).await;
    }

    /// Accepts any server certificate and host name (requests' `verify=False`), for test
    /// environments with self-signed certificates. Certificates are checked by default.
    pub fn accept_invalid_certs(&mut self, accept: bool) -> &mut Self {
        self.config_mut().tls.accept_invalid_certs(accept);
        self.conns.clear_tls();
        self
    }

    /// Also trusts the certificates in this PEM text, e.g. a test environment's own CA
    /// (Mozilla's roots, built in, stay trusted).
    pub fn add_root_certificate(&mut self, pem: impl AsRef<[u8]>) -> &mut Self {
        self.config_mut().tls.add_root_certificate(pem);
        self.conns.clear_tls();
        self
    }

    /// Presents this client certificate chain and private key (both PEM) to servers that
    /// ask for one (mutual TLS).
    pub fn client_certificate(
        &mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.config_mut().tls.client_certificate(cert_pem, key_pem);
        self.conns.clear_tls();
        self
    }

    /// Speaks HTTP/1.1 to `https://` servers even when they offer HTTP/2.
    pub fn http1_only(&mut self, only: bool) -> &mut Self {
        self.config_mut().tls.http1_only(only);
        self.conns.clear_tls();
        self
    }

    /// Sends every request of this user through the forward proxy at `url`,
    /// `http://[user:password@]host:port` (requests' `proxies=` with one proxy for `http`
    /// and `https`). `http://` targets are asked of the proxy in absolute form, `https://`
    /// targets go through a `CONNECT` tunnel with TLS to the target inside; credentials in
    /// the URL become `Proxy-Authorization: Basic`. A URL that cannot be used fails each
    /// request with requests' `InvalidProxyURL(...)` text. Set `config_mut().proxy = None` to
    /// connect directly again.
    pub fn proxy(&mut self, url: &str) -> &mut Self {
        self.config_mut().proxy = Some(Proxy::new(url));
        self
    }
}

/// The parsed base URL for `host`, shared with the clients made before for the same host:
/// users are made by the thousand for one host, and each parsing its own copy would cost
/// a few small allocations per user for as long as it lives. One entry, the last host, is
/// enough: the runner makes all users of a run for the same host (or a few).
fn shared_base(host: Option<&str>) -> Result<Option<Arc<BaseUrl>>, UrlError> {
    type Entry = (Box<str>, Result<Option<Arc<BaseUrl>>, UrlError>);
    static LAST: Mutex<Option<Entry>> = Mutex::new(None);
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    // A poisoned lock only means another thread panicked while holding it; the entry is
    // replaced whole, so it is never half-written.
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((h, base)) = last.as_ref() {
        if **h == *host {
            return base.clone();
        }
    }
    let base = BaseUrl::parse(host).map(|b| Some(Arc::new(b)));
    *last = Some((host.into(), base.clone()));
    base
}

/// One request being prepared; finish it with [`RequestBuilder::send`].
#[must_use = "a request does nothing until .send().await"]
pub struct RequestBuilder<'a> {
    client: &'a mut HttpClient,
    method: Method,
    path: Cow<'a, str>,
    name: Option<Cow<'a, str>>,
    headers: HeaderMap,
    query: String,
    body: Body,
    timeout: Option<Duration>,
    catch_response: bool,
    follow_redirects: bool,
    discard_body: bool,
    /// `expect_*` checks, in the order given (empty, so no allocation, when there are none).
    checks: Vec<Check>,
    /// A mistake made while building (bad header, unserialisable JSON), reported on send.
    error: Option<String>,
}

impl<'a> RequestBuilder<'a> {
    /// The name this request is grouped under in the statistics (Locust's `name=`), for
    /// URLs with ids in them: `client.get(format!("/item/{id}")).name("/item/[id]")`.
    pub fn name(mut self, name: impl Into<Cow<'a, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a header. An invalid name or value fails the request with a clear error.
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.as_ref()),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => {
                self.error.get_or_insert_with(|| {
                    errors::exception("InvalidHeader", &format!("Invalid header: {name}"))
                });
            }
        }
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Appends query parameters (URL-encoded), like `params=` in `requests`.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let mut ser = form_urlencoded::Serializer::new(std::mem::take(&mut self.query));
        for (k, v) in pairs {
            ser.append_pair(k.as_ref(), v.as_ref());
        }
        self.query = ser.finish();
        self
    }

    /// A JSON body (`Content-Type: application/json`), like `json=` in `requests`.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(v) => {
                self.body = Body::Bytes(Bytes::from(v));
                self.set_default_header(header::CONTENT_TYPE, "application/json");
            }
            Err(e) => self.error = Some(errors::exception("TypeError", &e.to_string())),
        }
        self
    }

    /// A form body (`application/x-www-form-urlencoded`), like `data={...}` in `requests`.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k.as_ref(), v.as_ref());
        }
        self.body = Body::Bytes(Bytes::from(ser.finish()));
        self.set_default_header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// A raw body read from this file while it is sent (requests' `data=open(path, "rb")`),
    /// a few chunks at a time, so a file of any size is never held in memory. Its size gives
    /// the `Content-Length`; no `Content-Type` is set unless the request sets one. A file
    /// that cannot be opened fails the request with a text naming it, e.g.
    /// `FileNotFoundError(2, "No such file or directory: 'big.bin'")`; a redirect that keeps
    /// the body (307, 308) sends the file again from the start.
    pub fn body_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.body = Body::Parts(Arc::from([Segment::File(path.into())]));
        self
    }

    /// A `multipart/form-data` body (requests' `files=` and `data=` together), with
    /// `Content-Type: multipart/form-data; boundary=...`. File parts are streamed from disk
    /// like [`RequestBuilder::body_file`]. See [`Multipart`].
    pub fn multipart(mut self, form: Multipart) -> Self {
        if !self.headers.contains_key(header::CONTENT_TYPE) {
            if let Ok(v) = HeaderValue::from_str(&form.content_type()) {
                self.headers.insert(header::CONTENT_TYPE, v);
            }
        }
        self.body = form.into_body();
        self
    }

    /// A timeout for this request only (overrides the client's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Do not follow redirects (`allow_redirects=False`).
    pub fn no_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// Locust's `catch_response=True`: nothing is recorded until the returned [`Response`]
    /// is dropped, and user code may call [`Response::success`] or [`Response::failure`]
    /// first to override the status rule.
    pub fn catch_response(mut self) -> Self {
        self.catch_response = true;
        self
    }

    /// Counts the body by its size without keeping it: for downloads whose content the task
    /// does not read. The size is recorded as usual; [`Response::bytes`] and
    /// [`Response::text`] are empty. Checks that read the body (`expect_body_contains`,
    /// `expect_json*`) still see it: it is then read whole, checked, and dropped.
    pub fn discard_body(mut self) -> Self {
        self.discard_body = true;
        self
    }

    /// Fails the request unless the response has this status: `CatchResponseError('expected
    /// status 200, got 404')`. With this check, the expected status is a success even when it
    /// is an error status (`expect_status(404)`), as `r.success()` would make it.
    ///
    /// Checks run in the order given when the response has arrived; the first that fails
    /// marks the request failed with its reason (Locust's `r.failure(reason)`), and the
    /// request is still recorded once, with its response time and length. Without
    /// `expect_status`, an error status fails with the status rule's `HTTPError(...)` before
    /// any other check runs; a connection error always keeps its own text. With
    /// [`RequestBuilder::catch_response`] too, the checks' verdict is set first and the task
    /// can still override it with [`Response::success`] or [`Response::failure`].
    pub fn expect_status(mut self, status: u16) -> Self {
        self.checks.push(Check::Status(status));
        self
    }

    /// Fails the request unless the body contains this text: `CatchResponseError('body does
    /// not contain "Checkout"')`. See [`RequestBuilder::expect_status`] for how checks run.
    pub fn expect_body_contains(mut self, text: impl Into<String>) -> Self {
        self.checks.push(Check::BodyContains(text.into()));
        self
    }

    /// Fails the request unless the body is JSON whose field at this
    /// [JSON Pointer](https://www.rfc-editor.org/rfc/rfc6901) (`/items`, `/items/0/id`, `""`
    /// for the whole document; `~1` stands for `/` in a key) equals `expected`:
    /// `JSON /items is 3, expected 2`, `JSON /items is missing` or `body is not JSON: ...`.
    /// Numbers compare by value (`2` equals `2.0`). A pointer without its leading `/` is a
    /// mistake in the script and fails the request unsent, like an invalid header.
    pub fn expect_json(mut self, pointer: &str, expected: impl Into<serde_json::Value>) -> Self {
        if self.pointer_ok(pointer) {
            self.checks
                .push(Check::JsonEquals(pointer.to_string(), expected.into()));
        }
        self
    }

    /// Fails the request unless the body is JSON with a field at this JSON Pointer (any value,
    /// `null` included): `JSON /token is missing`. See [`RequestBuilder::expect_json`].
    pub fn expect_json_exists(mut self, pointer: &str) -> Self {
        if self.pointer_ok(pointer) {
            self.checks.push(Check::JsonExists(pointer.to_string()));
        }
        self
    }

    fn pointer_ok(&mut self, pointer: &str) -> bool {
        match response::check_pointer(pointer) {
            Ok(()) => true,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| errors::exception("ValueError", e.reason()));
                false
            }
        }
    }

    fn set_default_header(&mut self, name: HeaderName, value: &'static str) {
        if !self.headers.contains_key(&name) {
            self.headers.insert(name, HeaderValue::from_static(value));
        }
    }

    /// Sends the request, reads the whole body and records it in the statistics (at once, or
    /// when the response is dropped with `catch_response`). Never fails: a connection error
    /// gives a response with status 0 whose [`Response::error`] says what happened.
    pub async fn send(self) -> Response {
        let drain = self.client.drain.clone();
        let _in_flight = drain.begin().await;
        let started = Instant::now();
        let RequestBuilder {
            client,
            method,
            path,
            name,
            mut headers,
            query,
            body,
            timeout,
            catch_response,
            follow_redirects,
            discard_body,
            checks,
            error,
        } = self;
        let keep_body = !discard_body || checks.iter().any(Check::needs_body);
        let path: Cow<'_, str> = if query.is_empty() {
            path
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            Cow::Owned(format!("{path}{sep}{query}"))
        };
        let target = match &client.base {
            _ if url::is_absolute(&path) => Target::parse(&path),
            Ok(Some(base)) => base.join(&path),
            Ok(None) => Target::parse(&path),
            Err(e) => Err(e.clone()),
        };
        // Locust names a request by the path and query it sent: with the base URL's own path,
        // percent-encoded, and without scheme and host for absolute URLs.
        let name: Cow<'_, str> = match (name, &target) {
            (Some(n), _) => n,
            (None, Ok(t)) if t.path_and_query == *path => Cow::Borrowed(&*path),
            (None, Ok(t)) => Cow::Owned(t.path_and_query.clone()),
            (None, Err(_)) => Cow::Borrowed(&*path),
        };
        let mut timing = Timings::default();
        // The proxy, shared with the config (an `Arc`: no copy); its URL's error, if unusable.
        let proxy = match client.config.proxy.as_ref().map(Proxy::target) {
            None => Ok(None),
            Some(Ok(p)) => Ok(Some(p.clone())),
            Some(Err(e)) => Err(e.to_string()),
        };
        let outcome = match (error, target, proxy) {
            (Some(e), _, _) => Err(e),
            (None, Err(e), _) => Err(errors::exception(e.python_class(), &e.to_string())),
            (None, Ok(_), Err(e)) => Err(e),
            (None, Ok(target), Ok(proxy)) => {
                for (k, v) in client.config.default_headers.iter() {
                    if !headers.contains_key(k) {
                        headers.insert(k.clone(), v.clone());
                    }
                }
                let limit = timeout.or(client.config.timeout);
                let pool = (target.scheme, target.host.clone(), target.port);
                let exchange = exchange(
                    client,
                    method.clone(),
                    target,
                    proxy.as_deref(),
                    headers,
                    body,
                    follow_redirects,
                    keep_body,
                    &mut timing,
                );
                match limit {
                    None => exchange.await,
                    Some(t) => match tokio::time::timeout(t, exchange).await {
                        Ok(r) => r,
                        Err(_) => {
                            // The connection may hold half a response: never reuse it.
                            client.conns.clear();
                            Err(errors::timeout_error(
                                pool.0 == url::Scheme::Https,
                                &pool.1,
                                pool.2,
                                t.as_secs_f64(),
                            ))
                        }
                    },
                }
            }
        };
        let response_time = started.elapsed();
        timing.total = response_time;
        let (status, headers, mut body, length, target, conn_error) = match outcome {
            Ok(ex) => (
                ex.status,
                ex.headers,
                ex.body,
                ex.length,
                Some(ex.target),
                None,
            ),
            Err(e) => (0, HeaderMap::new(), Bytes::new(), 0, None, Some(e)),
        };
        let connection_failed = conn_error.is_some();
        let default_error = conn_error.or_else(|| {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            errors::http_status_error(status, reason, &name)
        });
        let outcome = response::run_checks(
            &checks,
            status,
            &body,
            default_error.as_deref(),
            connection_failed,
        );
        if discard_body {
            body = Bytes::new();
        }
        // The failure text the checks give, else the status rule's.
        let error = match &outcome {
            Outcome::Default => default_error.clone(),
            Outcome::Success => None,
            Outcome::Failure(reason) => Some(errors::catch_response_error(reason)),
        };
        let pending = if catch_response {
            Some(Pending {
                method,
                name: name.into_owned(),
                response_time,
                length,
                default_error,
                outcome,
            })
        } else {
            // Recorded now, borrowing the name: the hot path allocates nothing for stats.
            hopper_stats::record(&hopper_stats::RequestRecord {
                request_type: method.as_str(),
                name: &name,
                response_time: Some(response_time),
                response_length: length,
                error: error.as_deref(),
            });
            None
        };
        Response::new(status, headers, body, target, timing, error, pending)
    }
}

/// What came back from the wire.
struct Exchange {
    status: u16,
    headers: HeaderMap,
    /// Empty when the body was not kept.
    body: Bytes,
    /// Bytes of body received.
    length: u64,
    target: Target,
}

/// Reads a response body to its end: whole when `keep`, else counting each frame's size
/// and dropping it at once (a large download then never sits in memory). With a decoder,
/// each frame is decoded as it comes and the decoded bytes are kept or counted; a body that
/// does not decode is still read to its end (the connection stays usable) and gives the
/// decoding error's text.
async fn read_body(
    mut incoming: Incoming,
    keep: bool,
    decoder: Option<Decoder>,
) -> Result<Result<(Bytes, u64), String>, hyper::Error> {
    if let Some(mut decoder) = decoder {
        while let Some(frame) = incoming.frame().await {
            if let Some(data) = frame?.data_ref() {
                decoder.write(data);
            }
        }
        return Ok(decoder.finish());
    }
    if keep {
        let body = incoming.collect().await?.to_bytes();
        let len = body.len() as u64;
        return Ok(Ok((body, len)));
    }
    let mut len = 0u64;
    while let Some(frame) = incoming.frame().await {
        if let Some(data) = frame?.data_ref() {
            len += data.len() as u64;
        }
    }
    Ok(Ok((Bytes::new(), len)))
}

/// Sends the request and follows redirects the way `requests` does: 303 and 302 become GET
/// (not for HEAD), 301 after a POST too; every redirect but 307/308 drops the body and its
/// headers; credentials are not sent on to another host. The body is opened anew for every
/// send (files are read from the start again).
#[allow(clippy::too_many_arguments)]
async fn exchange(
    client: &mut HttpClient,
    mut method: Method,
    mut target: Target,
    proxy: Option<&ProxyTarget>,
    mut headers: HeaderMap,
    mut body: Body,
    follow_redirects: bool,
    keep_body: bool,
    timing: &mut Timings,
) -> Result<Exchange, String> {
    let mut redirects = 0;
    loop {
        let req_body = match &body {
            Body::Bytes(b) => ReqBody::full(b.clone()),
            // Boxed: files and multipart forms are rare, and every request's future would
            // otherwise carry room for opening them.
            parts => Box::pin(parts.open()).await?,
        };
        let mut req = http::Request::new(req_body);
        *req.method_mut() = method.clone();
        // Through a proxy, an http:// request names the whole URL (absolute form); an
        // https:// one goes through a tunnel and looks like a direct request.
        let proxied = proxy.filter(|_| target.scheme == url::Scheme::Http);
        let uri = match proxied {
            None => http::Uri::try_from(target.path_and_query.clone()),
            Some(_) => http::Uri::try_from(target.url()),
        };
        *req.uri_mut() = uri.map_err(|_| {
            errors::exception("InvalidURL", &format!("Invalid URL '{}'", target.url()))
        })?;
        let h = req.headers_mut();
        if !headers.is_empty() {
            h.clone_from(&headers);
        }
        if let Some(host) = &target.host_value {
            h.insert(header::HOST, host.clone());
        }
        if !h.contains_key(header::ACCEPT_ENCODING) {
            h.insert(header::ACCEPT_ENCODING, ACCEPT_ENCODING);
        }
        if let Some(auth) = proxied.and_then(|p| p.auth.as_ref()) {
            h.insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        if let Some(auth) = &target.basic_auth {
            if !h.contains_key(header::AUTHORIZATION) {
                h.insert(header::AUTHORIZATION, auth.clone());
            }
        }
        if let Some(cookie) = client
            .cookies
            .header_for(&target.host, &target.path_and_query)
        {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                h.insert(header::COOKIE, v);
            }
        }
        let resp = client
            .conns
            .send(&target, proxy, req, &client.config.tls, timing)
            .await?;
        let (parts, incoming) = resp.into_parts();
        for sc in parts.headers.get_all(header::SET_COOKIE) {
            if let Ok(sc) = sc.to_str() {
                client
                    .cookies
                    .store(sc, &target.host, &target.path_and_query);
            }
        }
        let status = parts.status.as_u16();
        let location = parts
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok());
        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        let following = follow_redirects && is_redirect && location.is_some();
        // A redirect's own body is never shown: counted past, not kept, not decoded.
        let decoder = if following {
            None
        } else {
            Decoder::for_response(&parts.headers, keep_body)
        };
        let (body_bytes, length) = match read_body(incoming, keep_body && !following, decoder).await
        {
            Ok(b) => b?,
            Err(e) => {
                client.conns.discard(&target);
                return Err(errors::hyper_error(&e));
            }
        };
        match location {
            Some(loc) if following => {
                redirects += 1;
                if redirects > client.config.max_redirects {
                    return Err(errors::exception(
                        "TooManyRedirects",
                        &format!("Exceeded {} redirects.", client.config.max_redirects),
                    ));
                }
                let next = resolve_location(&target, loc)
                    .map_err(|e| errors::exception(e.python_class(), &e.to_string()))?;
                if (matches!(status, 302 | 303) && method != Method::HEAD)
                    || (status == 301 && method == Method::POST)
                {
                    method = Method::GET;
                }
                if !matches!(status, 307 | 308) {
                    body = Body::empty();
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::CONTENT_LENGTH);
                    headers.remove(header::TRANSFER_ENCODING);
                }
                if next.host != target.host
                    || next.port != target.port
                    || next.scheme != target.scheme
                {
                    // requests' should_strip_auth, minus its http→https upgrade exception.
                    headers.remove(header::AUTHORIZATION);
                }
                target = next;
            }
            _ => {
                return Ok(Exchange {
                    status,
                    headers: parts.headers,
                    body: body_bytes,
                    length,
                    target,
                })
            }
        }
    }
}

/// Resolves a `Location` header against the URL that answered with it.
fn resolve_location(current: &Target, location: &str) -> Result<Target, UrlError> {
    if url::is_absolute(location) {
        return Target::parse(location);
    }
    let origin = {
        let u = current.url();
        let scheme_end = u.find("://").map_or(0, |i| i + 3);
        let host_end = u[scheme_end..]
            .find('/')
            .map_or(u.len(), |i| scheme_end + i);
        u[..host_end].to_string()
    };
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = &origin[..origin.find("://").unwrap_or(0)];
        return Target::parse(&format!("{scheme}://{rest}"));
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let base = current.path_and_query.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    let mut t = Target::parse(&format!("{origin}{path}"))?;
    t.basic_auth.clone_from(&current.basic_auth);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every user holds its client for its whole life, idle or not: at 15,000 idle users
    /// each 100 bytes here is 1.4 MiB. The settings and the base URL are shared behind
    /// `Arc`s; what stays inline is the connection list (one connection kept inline, see
    /// `Connections`), the cookie jar, the drain handle and those two pointers. It was 584
    /// bytes when settings and base URL were copied into each client.
    #[test]
    fn a_client_stays_small() {
        let size = std::mem::size_of::<HttpClient>();
        assert!(size <= 256, "HttpClient is {size} bytes");
    }

    #[test]
    fn clients_of_one_host_share_its_parsed_base_and_settings() {
        let config = Arc::new(ClientConfig::default());
        let a = HttpClient::with_config(Some("http://127.0.0.1:9/api"), config.clone());
        let b = HttpClient::with_config(Some("http://127.0.0.1:9/api"), config.clone());
        let (Ok(Some(base_a)), Ok(Some(base_b))) = (&a.base, &b.base) else {
            panic!("both bases parse");
        };
        assert!(Arc::ptr_eq(base_a, base_b));
        assert!(Arc::ptr_eq(&a.config, &b.config));
        assert_eq!(a.base_url(), Some("http://127.0.0.1:9/api"));
        // Another host gets its own, and an invalid one its error, on every client.
        let c = HttpClient::new(Some("http://127.0.0.1:10"));
        assert_eq!(c.base_url(), Some("http://127.0.0.1:10"));
        let d = HttpClient::new(Some("127.0.0.1:10"));
        assert!(matches!(d.base, Err(UrlError::MissingSchema(_))));
        let e = HttpClient::new(Some("127.0.0.1:10"));
        assert!(matches!(e.base, Err(UrlError::MissingSchema(_))));
        assert_eq!(HttpClient::new(None).base_url(), None);
        assert_eq!(HttpClient::new(Some("")).base_url(), None);
    }

    #[test]
    fn changing_one_clients_settings_leaves_the_others_alone() {
        let config = Arc::new(ClientConfig::default());
        let mut a = HttpClient::with_config(None, config.clone());
        let b = HttpClient::with_config(None, config.clone());
        a.config_mut().timeout = Some(Duration::from_secs(3));
        a.proxy("http://127.0.0.1:3128");
        assert_eq!(a.config().timeout, Some(Duration::from_secs(3)));
        assert!(a.config().proxy.is_some());
        assert_eq!(b.config().timeout, None);
        assert!(b.config().proxy.is_none());
        assert_eq!(config.timeout, None);
    }
}
