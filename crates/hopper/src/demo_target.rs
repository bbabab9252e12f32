//! A small, fast HTTP application to point load tests at.
//!
//! `hopper --demo` starts a [`DemoTarget`] inside the process and runs the
//! built-in demo users against it, so a first-time user sees a real load test
//! without installing anything. Hopper's integration tests use the same server
//! and compare its [`Counters`] with what Hopper reports, and the benchmarks
//! hammer `GET /fast`. That shapes the design:
//!
//! * plain hyper HTTP/1.1 with keep-alive, one task per connection;
//! * the synchronous routes (including `/fast`) are answered without boxing a
//!   future or cloning shared state, static bodies are `Bytes::from_static`,
//!   and nothing is logged per request;
//! * counting is one relaxed atomic add into a preallocated table indexed by
//!   route, method and status, so it is exact and never takes a lock.
//!
//! # Routes
//!
//! | Route | Behaviour |
//! |---|---|
//! | `GET /` | small HTML home page ("Welcome to the Hopper demo shop") |
//! | `GET /fast` | `ok` as plain text (the benchmark endpoint) |
//! | `GET /slow[?ms=N]` | answers after 50–150 ms (uniform), or after `N` ms (capped at 10 s) |
//! | `POST /login` | JSON `{"username", "password"}` → 200 `{"token"}`; bad body or empty username → 400; password `wrong` → 401 |
//! | `GET /products` | JSON list of 10 products |
//! | `GET /products/{id}` | one product, or 404 |
//! | `GET /account` | needs `Authorization: Bearer <token from /login>` → 200 JSON, else 401 |
//! | `POST /purchase` | needs the bearer token; JSON `{"product_id", "quantity"}` → 201 order; 401 / 400 / 404 otherwise |
//! | `GET /orders/{id}` | needs the bearer token of the order's buyer → 200 the order as created; 404 for anyone else or an unknown (or long-forgotten: the last 100,000 are kept) order |
//! | `GET /flaky` | 500 about 10 % of the time, else 200 |
//! | `POST /upload` | streams any body (raw or multipart) frame by frame and answers `{"bytes": n}`; adds `n` to [`Counters::upload_bytes`] once the whole body has arrived |
//! | `GET /compressed[?enc=E]` | a JSON array of 160 products (about 8 KB) with `Content-Encoding: E`, where `E` is `gzip`, `deflate` (zlib), `br` or `identity` (no header); without `enc`, the first of `br`, `gzip`, `deflate` that the request's `Accept-Encoding` lists, else `identity`; any other `E` → 400 |
//! | `ANY /status/{code}` | answers with `code` (200–599), else 400 |
//! | `GET /redirect` | 302 to `/` |
//! | `GET /cookie/set` | sets the cookie `session=abc` |
//! | `GET /cookie/check` | 200 if the request carries `session=abc`, else 401 |
//! | `GET /ws/echo` | WebSocket upgrade (101); echoes every text or binary message back; anything but an upgrade → 400 |
//! | `GET /ws/close` | WebSocket upgrade (101); closes with code 1011 on the first message, without answering it |
//! | `GET /__counters` | the counters as JSON; not counted itself |
//! | anything else | 404 |
//!
//! Every `GET` route also answers `HEAD`. A known path asked with a method it
//! does not support answers 405 with an `Allow` header (and is counted).
//! A WebSocket upgrade is counted as `GET` with status 101, and every message
//! `/ws/echo` echoes as method `WS` with status 200 (messages `/ws/close`
//! receives are not counted). A server shutdown closes open WebSockets with
//! code 1001.
//! `/status/{code}` refuses 1xx codes: HTTP/1.1 cannot send an informational
//! status as a final response (hyper would turn it into a 500).
//! `/compressed` bodies are compressed once, on first use, and served from memory.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hopper_http::ws::server as ws_server;
use http::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING,
    CONTENT_TYPE, COOKIE, LOCATION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    SET_COOKIE, UPGRADE, VARY, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Path of the counters endpoint; requests to it are never counted, so
/// reading the counters over HTTP does not disturb them.
const COUNTERS_PATH: &str = "/__counters";

/// Longest `?ms=` delay `/slow` honours; larger values are clamped so a
/// typo cannot park a connection for hours.
const MAX_SLOW_MS: u64 = 10_000;

/// Largest JSON body `/login` and `/purchase` read; the body is buffered, so
/// it is bounded (`/upload` streams and has no limit).
const MAX_JSON_BODY: usize = 64 * 1024;

/// Longest accepted username. The username travels inside the token, so this
/// bounds the size of the `Authorization` header clients send back.
const MAX_USERNAME_BYTES: usize = 256;

/// Largest quantity `/purchase` accepts.
const MAX_QUANTITY: u32 = 1000;

/// How long [`DemoTarget::shutdown`] lets in-flight requests finish before
/// dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a WebSocket the server closes waits for the client's close frame.
const WS_CLOSE_WAIT: Duration = Duration::from_secs(1);

type Body = Full<Bytes>;

// ---------------------------------------------------------------------------
// Routes and counters
// ---------------------------------------------------------------------------

/// Every route the server knows, used as the first counter dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Home,
    Fast,
    Slow,
    Login,
    Products,
    Product,
    Account,
    Purchase,
    Flaky,
    Upload,
    Status,
    Redirect,
    CookieSet,
    CookieCheck,
    WsEcho,
    WsClose,
    Compressed,
    Order,
    Unmatched,
}

/// Which methods a route accepts.
#[derive(Clone, Copy)]
enum Allow {
    /// `GET` and `HEAD`.
    Get,
    /// `POST` only.
    Post,
    /// Any method.
    Any,
}

impl Allow {
    fn permits(self, method: &Method) -> bool {
        match self {
            Allow::Get => method == Method::GET || method == Method::HEAD,
            Allow::Post => method == Method::POST,
            Allow::Any => true,
        }
    }

    fn header(self) -> &'static str {
        match self {
            Allow::Get => "GET, HEAD",
            Allow::Post => "POST",
            // Never sent (`Any` permits everything); listed for completeness.
            Allow::Any => "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS",
        }
    }
}

impl Route {
    const COUNT: usize = 19;

    /// Labels used in counter keys; parameterised routes use the pattern so
    /// `/products/1` and `/products/2` count together.
    const LABELS: [&'static str; Route::COUNT] = [
        "/",
        "/fast",
        "/slow",
        "/login",
        "/products",
        "/products/{id}",
        "/account",
        "/purchase",
        "/flaky",
        "/upload",
        "/status/{code}",
        "/redirect",
        "/cookie/set",
        "/cookie/check",
        "/ws/echo",
        "/ws/close",
        "/compressed",
        "/orders/{id}",
        "(unmatched)",
    ];

    /// Resolves a path to its route. The match is exact (no trailing-slash
    /// folding) so counts line up with what the client asked for.
    fn of(path: &str) -> (Route, Allow) {
        match path {
            "/" => (Route::Home, Allow::Get),
            "/fast" => (Route::Fast, Allow::Get),
            "/slow" => (Route::Slow, Allow::Get),
            "/login" => (Route::Login, Allow::Post),
            "/products" => (Route::Products, Allow::Get),
            "/account" => (Route::Account, Allow::Get),
            "/purchase" => (Route::Purchase, Allow::Post),
            "/flaky" => (Route::Flaky, Allow::Get),
            "/upload" => (Route::Upload, Allow::Post),
            "/redirect" => (Route::Redirect, Allow::Get),
            "/cookie/set" => (Route::CookieSet, Allow::Get),
            "/cookie/check" => (Route::CookieCheck, Allow::Get),
            "/ws/echo" => (Route::WsEcho, Allow::Get),
            "/ws/close" => (Route::WsClose, Allow::Get),
            "/compressed" => (Route::Compressed, Allow::Get),
            p if p.starts_with("/products/") => (Route::Product, Allow::Get),
            p if p.starts_with("/orders/") => (Route::Order, Allow::Get),
            p if p.starts_with("/status/") => (Route::Status, Allow::Any),
            _ => (Route::Unmatched, Allow::Any),
        }
    }
}

/// Method labels used in counter keys; anything not listed counts as `OTHER`.
/// `WS` is not an HTTP method: it counts WebSocket messages echoed.
const METHOD_LABELS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "WS", "OTHER",
];

/// The `WS` label's index.
const WS_MESSAGE: usize = 7;

fn method_index(method: &Method) -> usize {
    // Compared against the well-known constants rather than strings: for
    // standard methods `==` is a cheap enum comparison.
    const KNOWN: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .position(|m| m == method)
        .unwrap_or(METHOD_LABELS.len() - 1)
}

/// The server only ever produces final statuses 200–599 (see the module docs
/// on 1xx) and 101 for WebSocket upgrades, so the table covers exactly those:
/// slot 0 is 101, slots 1–400 are 200–599.
const STATUS_MIN: u16 = 200;
const STATUS_SLOTS: usize = 401;

/// The table slot of a status the server can produce.
fn status_slot(status: u16) -> Option<usize> {
    match status {
        101 => Some(0),
        200..=599 => Some(usize::from(status - STATUS_MIN) + 1),
        _ => None,
    }
}

/// The status of a table slot (the inverse of [`status_slot`]).
fn slot_status(slot: usize) -> u16 {
    match slot {
        0 => 101,
        n => STATUS_MIN + (n - 1) as u16,
    }
}

/// One entry of a [`Counters::snapshot`]: which route, method and response
/// status a group of requests had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CounterKey {
    /// Route pattern, e.g. `"/fast"`, `"/products/{id}"`, or `"(unmatched)"`
    /// for paths the server does not know.
    pub route: &'static str,
    /// Request method: `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `PATCH`,
    /// `OPTIONS`, or `OTHER` for any other method.
    pub method: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Exact request counters of a [`DemoTarget`].
///
/// A request is counted once, when the server has produced its response
/// (404s and 405s included; `/__counters` excluded). A request whose client
/// disconnects before the response exists (e.g. during `/slow`'s delay) is
/// not counted. All operations are lock-free.
pub struct Counters {
    /// `[route][method][status slot]`, flattened. A fixed table makes
    /// recording a single relaxed `fetch_add` with no hashing or locking.
    slots: Box<[AtomicU64]>,
    /// Body bytes of the `/upload` requests read to their end.
    upload_bytes: AtomicU64,
}

impl Counters {
    fn new() -> Counters {
        let len = Route::COUNT * METHOD_LABELS.len() * STATUS_SLOTS;
        Counters {
            slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
            upload_bytes: AtomicU64::new(0),
        }
    }

    fn slot(route: usize, method: usize, status: usize) -> usize {
        (route * METHOD_LABELS.len() + method) * STATUS_SLOTS + status
    }

    fn record(&self, route: Route, method: usize, status: StatusCode) {
        debug_assert!(status_slot(status.as_u16()).is_some());
        // The fallback only keeps an impossible status from indexing out of bounds.
        let s = status_slot(status.as_u16()).unwrap_or(STATUS_SLOTS - 1);
        let i = Counters::slot(route as usize, method, s);
        self.slots[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Body bytes received by `POST /upload` since start or the last
    /// [`reset`](Counters::reset), counting only uploads whose whole body
    /// arrived (those answered 200).
    pub fn upload_bytes(&self) -> u64 {
        self.upload_bytes.load(Ordering::Relaxed)
    }

    /// Total number of requests counted since start or the last
    /// [`reset`](Counters::reset).
    pub fn total(&self) -> u64 {
        // Summed on demand rather than kept in a separate atomic: reads are
        // rare, and it keeps the hot path at one contended increment.
        self.slots.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Number of requests with this route pattern (as in [`CounterKey::route`]),
    /// method and response status. Unknown route labels or statuses give 0;
    /// a method outside the labelled set reads the `OTHER` counter.
    pub fn get(&self, method: &str, route: &str, status: u16) -> u64 {
        let Some(r) = Route::LABELS.iter().position(|l| *l == route) else {
            return 0;
        };
        let Some(s) = status_slot(status) else {
            return 0;
        };
        let m = METHOD_LABELS
            .iter()
            .position(|l| *l == method)
            .unwrap_or(METHOD_LABELS.len() - 1);
        self.slots[Counters::slot(r, m, s)].load(Ordering::Relaxed)
    }

    /// All non-zero counters, ordered by route, method and status.
    pub fn snapshot(&self) -> BTreeMap<CounterKey, u64> {
        let mut out = BTreeMap::new();
        for (i, c) in self.slots.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let status = slot_status(i % STATUS_SLOTS);
            let rest = i / STATUS_SLOTS;
            let key = CounterKey {
                route: Route::LABELS[rest / METHOD_LABELS.len()],
                method: METHOD_LABELS[rest % METHOD_LABELS.len()],
                status,
            };
            out.insert(key, n);
        }
        out
    }

    /// Sets every counter to zero. Requests completing while the reset runs
    /// may or may not be included, so reset between runs, not during one.
    pub fn reset(&self) {
        for c in self.slots.iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.upload_bytes.store(0, Ordering::Relaxed);
    }

    /// The JSON served at `GET /__counters`.
    fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Entry {
            route: &'static str,
            method: &'static str,
            status: u16,
            count: u64,
        }
        #[derive(Serialize)]
        struct Doc {
            total: u64,
            upload_bytes: u64,
            requests: Vec<Entry>,
        }
        let requests: Vec<Entry> = self
            .snapshot()
            .into_iter()
            .map(|(k, count)| Entry {
                route: k.route,
                method: k.method,
                status: k.status,
                count,
            })
            .collect();
        // `total` is derived from the same snapshot so the document is
        // self-consistent even while traffic is running.
        let doc = Doc {
            total: requests.iter().map(|e| e.count).sum(),
            upload_bytes: self.upload_bytes(),
            requests,
        };
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field("total", &self.total())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Static content
// ---------------------------------------------------------------------------

const HOME_PAGE: &str = "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>Hopper demo shop</title></head>
<body>
<h1>Welcome to the Hopper demo shop</h1>
<p>A tiny shop for trying out load tests.</p>
<ul>
<li><a href=\"/products\">Products</a></li>
<li><a href=\"/account\">Your account</a></li>
<li><a href=\"/fast\">Fast</a> and <a href=\"/slow\">slow</a> pages</li>
</ul>
</body>
</html>
";

#[derive(Serialize)]
struct Product {
    id: u64,
    name: &'static str,
    price: f64,
}

/// The catalogue as (name, price in cents); ids are 1-based positions.
/// Prices are kept in cents so order totals are exact.
const PRODUCTS: [(&str, u64); 10] = [
    ("Hopper T-shirt", 1999),
    ("Locust mug", 1250),
    ("Swarm sticker pack", 499),
    ("Latency socks", 899),
    ("Throughput hoodie", 4999),
    ("Percentile poster", 1500),
    ("Keep-alive keychain", 350),
    ("Ramp-up water bottle", 2200),
    ("Spawn-rate notebook", 799),
    ("Timeout tote bag", 1675),
];

fn product(index: usize) -> Product {
    let (name, cents) = PRODUCTS[index];
    Product {
        id: index as u64 + 1,
        name,
        price: cents as f64 / 100.0,
    }
}

fn product_index(id: u64) -> Option<usize> {
    usize::try_from(id)
        .ok()
        .and_then(|id| id.checked_sub(1))
        .filter(|i| *i < PRODUCTS.len())
}

/// Product JSON is rendered once, so serving it borrows `'static` bytes.
static PRODUCTS_JSON: LazyLock<String> = LazyLock::new(|| {
    let all: Vec<Product> = (0..PRODUCTS.len()).map(product).collect();
    serde_json::to_string(&all).unwrap_or_default()
});

static PRODUCT_JSON: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..PRODUCTS.len())
        .map(|i| serde_json::to_string(&product(i)).unwrap_or_default())
        .collect()
});

/// How many copies of the catalogue `/compressed` serves: enough text (about
/// 8 KB) for compression to matter, small enough to answer at load-test rates.
const COMPRESSED_COPIES: usize = 16;

/// `/compressed`'s body in each encoding, made on first use:
/// `[identity, gzip, deflate (zlib), br]`.
static COMPRESSED: LazyLock<[Bytes; 4]> = LazyLock::new(|| {
    use std::io::Write;
    let all: Vec<Product> = (0..PRODUCTS.len() * COMPRESSED_COPIES)
        .map(|i| product(i % PRODUCTS.len()))
        .collect();
    let text = serde_json::to_vec(&all).unwrap_or_default();
    // Writing into a Vec cannot fail; an empty body would only make tests fail loudly.
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(&text);
        e.finish().unwrap_or_default()
    };
    let deflate = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(&text);
        e.finish().unwrap_or_default()
    };
    let br = {
        let mut out = Vec::new();
        {
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
            let _ = e.write_all(&text);
        }
        out
    };
    [text, gzip, deflate, br].map(Bytes::from)
});

/// The encodings `/compressed` knows, as (name, index into [`COMPRESSED`]).
const ENCODINGS: [(&str, usize); 4] = [("identity", 0), ("gzip", 1), ("deflate", 2), ("br", 3)];

/// `/compressed`: the encoding asked for with `?enc=`, else negotiated from
/// `Accept-Encoding` (br, then gzip, then deflate; q-values are not weighed).
fn compressed(req: &Request<Incoming>) -> Response<Body> {
    let asked = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("enc=")));
    let index = match asked {
        Some(enc) => match ENCODINGS.iter().find(|(name, _)| *name == enc) {
            Some((_, i)) => *i,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "enc must be gzip, deflate, br or identity",
                )
            }
        },
        None => {
            let offered = |coding: &str| has_token(req.headers(), &ACCEPT_ENCODING, coding);
            ["br", "gzip", "deflate"]
                .into_iter()
                .find(|c| offered(c))
                .and_then(|c| ENCODINGS.iter().find(|(name, _)| *name == c))
                .map_or(0, |(_, i)| *i)
        }
    };
    let mut resp = respond(StatusCode::OK, JSON, COMPRESSED[index].clone());
    let h = resp.headers_mut();
    if index != 0 {
        h.insert(
            CONTENT_ENCODING,
            HeaderValue::from_static(ENCODINGS[index].0),
        );
    }
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

// ---------------------------------------------------------------------------
// Response helpers
// ---------------------------------------------------------------------------

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, JSON, Bytes::from(body)),
        // Our response types always serialise; this only guards the impossible.
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "serialisation failed"),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    #[derive(Serialize)]
    struct ErrorBody {
        error: String,
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: message.into(),
    })
    .unwrap_or_default();
    respond(status, JSON, Bytes::from(body))
}

fn unauthorized(message: &'static str) -> Response<Body> {
    let mut resp = error(StatusCode::UNAUTHORIZED, message);
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn not_found() -> Response<Body> {
    respond(
        StatusCode::NOT_FOUND,
        JSON,
        Bytes::from_static(br#"{"error":"not found"}"#),
    )
}

fn method_not_allowed(allow: Allow) -> Response<Body> {
    let mut resp = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        JSON,
        Bytes::from_static(br#"{"error":"method not allowed"}"#),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow.header()));
    resp
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// Issues and checks bearer tokens without storing them.
///
/// A token is `nonce ‖ mac ‖ hex(username)` where `mac` is SipHash (std's
/// keyed hasher) over nonce and username under a key chosen at start. Being
/// stateless, logins during a long load test cost no memory and no lock, and
/// a token only validates on the server instance that issued it.
struct Tokens {
    key: RandomState,
}

impl Tokens {
    fn mac(&self, nonce: u64, username: &[u8]) -> u64 {
        let mut h = self.key.build_hasher();
        h.write_u64(nonce);
        h.write(username);
        h.finish()
    }

    fn issue(&self, username: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let nonce = fastrand::u64(..);
        let mac = self.mac(nonce, username.as_bytes());
        let mut token = format!("{nonce:016x}{mac:016x}");
        token.reserve(username.len() * 2);
        for b in username.bytes() {
            token.push(HEX[usize::from(b >> 4)] as char);
            token.push(HEX[usize::from(b & 0xf)] as char);
        }
        token
    }

    /// Returns the username a valid token was issued to.
    fn verify(&self, token: &str) -> Option<String> {
        fn hex_digit(b: u8) -> Option<u8> {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        }
        fn hex_u64(s: &[u8]) -> Option<u64> {
            s.iter()
                .try_fold(0u64, |acc, b| Some(acc << 4 | u64::from(hex_digit(*b)?)))
        }
        let bytes = token.as_bytes();
        if bytes.len() < 34 {
            return None;
        }
        let nonce = hex_u64(&bytes[..16])?;
        let mac = hex_u64(&bytes[16..32])?;
        let pairs = bytes[32..].chunks_exact(2);
        if !pairs.remainder().is_empty() {
            return None;
        }
        let username = pairs
            .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        (self.mac(nonce, &username) == mac)
            .then(|| String::from_utf8(username).ok())
            .flatten()
    }
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// State shared by every connection of one server.
struct State {
    counters: Arc<Counters>,
    tokens: Tokens,
    next_order_id: AtomicU64,
    orders: Orders,
    /// Tells open WebSockets (which outlive their HTTP connection) to close.
    shutdown: watch::Receiver<bool>,
}

/// Routes whose handlers await (a timer or the request body).
enum AsyncRoute {
    Slow,
    Login,
    Purchase,
    Upload,
}

/// What the synchronous dispatch decided.
enum Dispatch {
    Done(Response<Body>),
    Async(AsyncRoute),
}

impl State {
    fn dispatch(&self, route: Route, req: &mut Request<Incoming>) -> Dispatch {
        let resp = match route {
            Route::Home => respond(
                StatusCode::OK,
                HTML,
                Bytes::from_static(HOME_PAGE.as_bytes()),
            ),
            Route::Fast => respond(StatusCode::OK, TEXT, Bytes::from_static(b"ok")),
            Route::Products => respond(
                StatusCode::OK,
                JSON,
                Bytes::from_static(PRODUCTS_JSON.as_bytes()),
            ),
            Route::Product => {
                let id = req.uri().path()["/products/".len()..].parse::<u64>().ok();
                match id.and_then(product_index) {
                    Some(i) => respond(
                        StatusCode::OK,
                        JSON,
                        Bytes::from_static(PRODUCT_JSON[i].as_bytes()),
                    ),
                    None => error(StatusCode::NOT_FOUND, "no such product"),
                }
            }
            Route::Order => {
                let id = req.uri().path()["/orders/".len()..].parse::<u64>().ok();
                match self.authenticate(req.headers()) {
                    Err(message) => unauthorized(message),
                    Ok(username) => match id.and_then(|id| self.orders.get(id)) {
                        // Only the buyer sees an order; to anyone else it does not exist.
                        Some(order) if order.username == username => json(StatusCode::OK, &order),
                        _ => not_found(),
                    },
                }
            }
            Route::Account => match self.authenticate(req.headers()) {
                Ok(username) => {
                    #[derive(Serialize)]
                    struct Account {
                        username: String,
                        plan: &'static str,
                    }
                    json(
                        StatusCode::OK,
                        &Account {
                            username,
                            plan: "demo",
                        },
                    )
                }
                Err(message) => unauthorized(message),
            },
            Route::Flaky => {
                if fastrand::u8(..10) == 0 {
                    respond(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        JSON,
                        Bytes::from_static(br#"{"error":"flaky failure"}"#),
                    )
                } else {
                    respond(StatusCode::OK, TEXT, Bytes::from_static(b"ok"))
                }
            }
            Route::Status => status_route(&req.uri().path()["/status/".len()..]),
            Route::Redirect => {
                let mut resp = empty(StatusCode::FOUND);
                resp.headers_mut()
                    .insert(LOCATION, HeaderValue::from_static("/"));
                resp
            }
            Route::CookieSet => {
                let mut resp = respond(StatusCode::OK, TEXT, Bytes::from_static(b"cookie set"));
                resp.headers_mut()
                    .insert(SET_COOKIE, HeaderValue::from_static("session=abc; Path=/"));
                resp
            }
            Route::CookieCheck => {
                if has_session_cookie(req.headers()) {
                    respond(StatusCode::OK, TEXT, Bytes::from_static(b"cookie ok"))
                } else {
                    error(StatusCode::UNAUTHORIZED, "missing cookie session=abc")
                }
            }
            Route::WsEcho | Route::WsClose => self.websocket(route, req),
            Route::Compressed => compressed(req),
            Route::Unmatched => not_found(),
            Route::Slow => return Dispatch::Async(AsyncRoute::Slow),
            Route::Login => return Dispatch::Async(AsyncRoute::Login),
            Route::Purchase => return Dispatch::Async(AsyncRoute::Purchase),
            Route::Upload => return Dispatch::Async(AsyncRoute::Upload),
        };
        Dispatch::Done(resp)
    }

    /// Answers a WebSocket upgrade with 101 and serves the socket in its own task
    /// once hyper hands the connection over; anything else gets a 400.
    fn websocket(&self, route: Route, req: &mut Request<Incoming>) -> Response<Body> {
        let headers = req.headers();
        let key = headers.get(SEC_WEBSOCKET_KEY).cloned();
        let valid = req.method() == Method::GET
            && has_token(headers, &UPGRADE, "websocket")
            && has_token(headers, &CONNECTION, "upgrade")
            && headers
                .get(SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v.as_bytes() == b"13");
        let Some(key) = key.filter(|_| valid) else {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a WebSocket upgrade: GET with Upgrade: websocket, Connection: \
                 Upgrade, Sec-WebSocket-Version: 13 and Sec-WebSocket-Key",
            );
        };
        let Ok(accept) = HeaderValue::from_str(&ws_server::accept_key(key.as_bytes())) else {
            return error(StatusCode::BAD_REQUEST, "invalid Sec-WebSocket-Key");
        };
        let on_upgrade = hyper::upgrade::on(req);
        let counters = Arc::clone(&self.counters);
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut socket = ws_server::ServerSocket::from_upgraded(TokioIo::new(upgraded)).await;
            loop {
                let message = tokio::select! {
                    m = socket.recv() => m,
                    // A shutdown, or the server dropped.
                    () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                        let close = socket.close(1001, "server shutting down");
                        let _ = tokio::time::timeout(WS_CLOSE_WAIT, close).await;
                        return;
                    }
                };
                let Some(message) = message else {
                    return;
                };
                if route == Route::WsClose {
                    let close = socket.close(1011, "closing after the first message");
                    let _ = tokio::time::timeout(WS_CLOSE_WAIT, close).await;
                    return;
                }
                if socket.send(message).await.is_err() {
                    return;
                }
                counters.record(route, WS_MESSAGE, StatusCode::OK);
            }
        });
        let mut resp = empty(StatusCode::SWITCHING_PROTOCOLS);
        let h = resp.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(SEC_WEBSOCKET_ACCEPT, accept);
        resp
    }

    /// Checks `Authorization: Bearer <token>` and returns the token's
    /// username; `Err` is the message for the 401.
    fn authenticate(&self, headers: &HeaderMap) -> Result<String, &'static str> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err("missing bearer token");
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        token
            .and_then(|t| self.tokens.verify(t))
            .ok_or("invalid bearer token")
    }

    async fn login(&self, req: Request<Incoming>) -> Response<Body> {
        #[derive(Deserialize)]
        struct Login {
            username: String,
            password: String,
        }
        #[derive(Serialize)]
        struct Token {
            token: String,
        }
        let body = match read_small_body(req.into_body()).await {
            Ok(body) => body,
            Err(resp) => return resp,
        };
        let login: Login = match serde_json::from_slice(&body) {
            Ok(login) => login,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(r#"expected JSON {{"username": string, "password": string}}: {e}"#),
                )
            }
        };
        if login.username.is_empty() {
            return error(StatusCode::BAD_REQUEST, "username must not be empty");
        }
        if login.username.len() > MAX_USERNAME_BYTES {
            return error(StatusCode::BAD_REQUEST, "username too long");
        }
        if login.password == "wrong" {
            return unauthorized("invalid credentials");
        }
        json(
            StatusCode::OK,
            &Token {
                token: self.tokens.issue(&login.username),
            },
        )
    }

    async fn purchase(&self, req: Request<Incoming>) -> Response<Body> {
        #[derive(Deserialize)]
        struct Purchase {
            product_id: u64,
            quantity: u32,
        }
        let auth = self.authenticate(req.headers());
        // Read the body even when the token is bad, so the connection can be
        // kept alive instead of being closed with an unread body.
        let body = read_small_body(req.into_body()).await;
        let username = match auth {
            Ok(username) => username,
            Err(message) => return unauthorized(message),
        };
        let body = match body {
            Ok(body) => body,
            Err(resp) => return resp,
        };
        let order: Purchase = match serde_json::from_slice(&body) {
            Ok(order) => order,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(r#"expected JSON {{"product_id": integer, "quantity": integer}}: {e}"#),
                )
            }
        };
        if !(1..=MAX_QUANTITY).contains(&order.quantity) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            );
        }
        let Some(index) = product_index(order.product_id) else {
            return error(StatusCode::NOT_FOUND, "no such product");
        };
        let (name, cents) = PRODUCTS[index];
        let order = Order {
            order_id: self.next_order_id.fetch_add(1, Ordering::Relaxed),
            product_id: order.product_id,
            name,
            quantity: order.quantity,
            total: (cents * u64::from(order.quantity)) as f64 / 100.0,
            username,
        };
        let created = json(StatusCode::CREATED, &order);
        self.orders.insert(order);
        created
    }
}

/// An order as `POST /purchase` creates it and `GET /orders/{id}` shows it.
#[derive(Serialize, Clone)]
struct Order {
    order_id: u64,
    product_id: u64,
    name: &'static str,
    quantity: u32,
    total: f64,
    username: String,
}

/// The most recent orders, so a test can fetch what it created. Bounded: the oldest are
/// forgotten first, so a long load test cannot grow the server without limit.
#[derive(Default)]
struct Orders {
    kept: std::sync::Mutex<BTreeMap<u64, Order>>,
}

impl Orders {
    const KEPT: usize = 100_000;

    fn insert(&self, order: Order) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.insert(order.order_id, order);
        while kept.len() > Self::KEPT {
            kept.pop_first();
        }
    }

    fn get(&self, id: u64) -> Option<Order> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(&id).cloned()
    }
}

/// Reads a bounded request body for the JSON endpoints.
async fn read_small_body(body: Incoming) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, MAX_JSON_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_JSON_BODY} bytes"),
        )),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "failed to read request body",
        )),
    }
}

/// Parses `/slow`'s query: `None` means "no `ms` given", `Err` a bad value.
fn slow_delay_ms(query: Option<&str>) -> Result<Option<u64>, ()> {
    let Some(query) = query else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("ms=") {
            return value
                .parse::<u64>()
                .map(|ms| Some(ms.min(MAX_SLOW_MS)))
                .map_err(|_| ());
        }
    }
    Ok(None)
}

async fn slow(req: Request<Incoming>) -> Response<Body> {
    #[derive(Serialize)]
    struct Slept {
        delay_ms: u64,
    }
    let delay_ms = match slow_delay_ms(req.uri().query()) {
        Ok(Some(ms)) => ms,
        Ok(None) => fastrand::u64(50..=150),
        Err(()) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("ms must be a non-negative integer (capped at {MAX_SLOW_MS})"),
            )
        }
    };
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    json(StatusCode::OK, &Slept { delay_ms })
}

/// Counts the body frame by frame, so a large upload never sits in memory.
/// Multipart bodies are counted as sent, framing included. The bytes of an
/// upload read to its end are added to the counters.
async fn upload(req: Request<Incoming>, counters: &Counters) -> Response<Body> {
    #[derive(Serialize)]
    struct Uploaded {
        bytes: u64,
    }
    let mut body = req.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                }
            }
            Err(_) => return error(StatusCode::BAD_REQUEST, "failed to read request body"),
        }
    }
    counters.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    json(StatusCode::OK, &Uploaded { bytes })
}

fn status_route(code: &str) -> Response<Body> {
    match code.parse::<u16>() {
        Ok(code @ 200..=599) => match StatusCode::from_u16(code) {
            Ok(status) => empty(status),
            Err(_) => error(StatusCode::BAD_REQUEST, "invalid status code"),
        },
        _ => error(
            StatusCode::BAD_REQUEST,
            "status code must be 200-599 (1xx cannot be a final response)",
        ),
    }
}

/// True when a comma-separated header (e.g. `Connection: keep-alive, Upgrade`)
/// lists `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim() == "session=abc")
}

// ---------------------------------------------------------------------------
// Service and server
// ---------------------------------------------------------------------------

/// The per-connection hyper service.
#[derive(Clone)]
struct Svc {
    state: Arc<State>,
}

/// Response future: synchronous routes are `Ready` (no allocation, no `Arc`
/// clone); only routes that really await are boxed.
enum RespFuture {
    Ready(Option<Response<Body>>),
    Boxed(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for RespFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            RespFuture::Ready(resp) => match resp.take() {
                Some(resp) => Poll::Ready(Ok(resp)),
                // hyper never polls a completed future; answering 500
                // instead of panicking keeps the server up regardless.
                None => Poll::Ready(Ok(empty(StatusCode::INTERNAL_SERVER_ERROR))),
            },
            RespFuture::Boxed(fut) => fut.as_mut().poll(cx).map(Ok),
        }
    }
}

impl Service<Request<Incoming>> for Svc {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RespFuture;

    fn call(&self, mut req: Request<Incoming>) -> RespFuture {
        let path = req.uri().path();
        if path == COUNTERS_PATH {
            let resp = if Allow::Get.permits(req.method()) {
                respond(
                    StatusCode::OK,
                    JSON,
                    Bytes::from(self.state.counters.to_json()),
                )
            } else {
                method_not_allowed(Allow::Get)
            };
            return RespFuture::Ready(Some(resp));
        }

        let (route, allow) = Route::of(path);
        let method = method_index(req.method());
        let dispatch = if allow.permits(req.method()) {
            self.state.dispatch(route, &mut req)
        } else {
            Dispatch::Done(method_not_allowed(allow))
        };
        match dispatch {
            Dispatch::Done(resp) => {
                self.state.counters.record(route, method, resp.status());
                RespFuture::Ready(Some(resp))
            }
            Dispatch::Async(kind) => {
                let state = Arc::clone(&self.state);
                RespFuture::Boxed(Box::pin(async move {
                    let resp = match kind {
                        AsyncRoute::Slow => slow(req).await,
                        AsyncRoute::Login => state.login(req).await,
                        AsyncRoute::Purchase => state.purchase(req).await,
                        AsyncRoute::Upload => upload(req, &state.counters).await,
                    };
                    state.counters.record(route, method, resp.status());
                    resp
                }))
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, svc: Svc, mut shutdown: watch::Receiver<bool>) {
    // Responses are written in one go; without NODELAY, Nagle plus delayed
    // ACKs can add tens of milliseconds on keep-alive connections.
    let _ = stream.set_nodelay(true);
    // Default builder: keep-alive on, and no timer, so hyper sets up no
    // per-request header-read timeout (this target only faces test clients).
    // `pipeline_flush` is left off; hyper documents it as experimental.
    // `with_upgrades` hands WebSocket connections over to their own task.
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // Connection errors (client resets, malformed requests) are the
        // client's business; a load-test target stays quiet about them.
        _ = conn.as_mut() => return,
        _ = shutdown.changed() => {}
    }
    // Finish the request in flight (if any), then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let svc = Svc { state: Arc::clone(&state) };
                    connections.spawn(serve_connection(stream, svc, shutdown.clone()));
                }
                // Typically EMFILE under a connection storm: pause instead of
                // spinning, then keep serving the connections we have.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Free the port first, then give in-flight requests a bounded grace
    // period; whatever is left is aborted when `connections` drops.
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drain).await;
}

/// `addr` with an unspecified IP (`0.0.0.0` / `::`) replaced by the loopback
/// address of the same family.
fn connectable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

/// A running demo server.
///
/// Dropping the handle aborts the server and all its connections at once;
/// [`shutdown`](DemoTarget::shutdown) stops it gracefully.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use hopper::demo_target::DemoTarget;
/// let target = DemoTarget::start("127.0.0.1:0".parse().unwrap()).await?;
/// println!("try {}/products", target.base_url());
/// // ... run load against it ...
/// println!("{} requests served", target.counters().total());
/// target.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct DemoTarget {
    addr: SocketAddr,
    counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DemoTarget {
    /// Binds `addr` (port 0 picks a free port) and spawns the server on the
    /// current tokio runtime, which must have IO and time enabled.
    ///
    /// # Errors
    ///
    /// Returns the error from binding the listener.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<DemoTarget> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(State {
            counters: Arc::clone(&counters),
            tokens: Tokens {
                key: RandomState::new(),
            },
            next_order_id: AtomicU64::new(1),
            orders: Orders::default(),
            shutdown: shutdown_rx.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, state, shutdown_rx));
        Ok(DemoTarget {
            addr,
            counters,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the real port when bound to 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:40123`. When bound to an
    /// unspecified address (`0.0.0.0` / `::`), the loopback address of the
    /// same family is used so the URL is always connectable.
    pub fn base_url(&self) -> String {
        format!("http://{}", connectable(self.addr))
    }

    /// The server's request counters. The `Arc` stays valid after the
    /// server stops, so counts can be checked after shutdown.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Stops accepting connections (the port is released), lets requests in
    /// flight finish (up to a few seconds), closes idle keep-alive
    /// connections, and returns once everything is stopped.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task too.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for DemoTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoTarget")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::combinators::BoxBody;
    use hyper::body::Frame;
    use hyper::client::conn::http1::SendRequest;
    use serde_json::Value;

    type ClientBody = BoxBody<Bytes, Infallible>;

    /// Upper bound for waits that must end on their own; never a timing check.
    const BOUND: Duration = Duration::from_secs(20);

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        fn text(&self) -> &str {
            std::str::from_utf8(&self.body).expect("utf-8 body")
        }

        fn json(&self) -> Value {
            assert_eq!(self.headers[CONTENT_TYPE], JSON, "content type");
            serde_json::from_slice(&self.body).expect("JSON body")
        }
    }

    async fn start() -> DemoTarget {
        DemoTarget::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind 127.0.0.1:0")
    }

    /// Opens a keep-alive HTTP/1 connection; the returned handle finishes
    /// when the connection closes.
    async fn connect(addr: SocketAddr) -> (SendRequest<ClientBody>, JoinHandle<()>) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        (sender, task)
    }

    fn request(
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ClientBody,
    ) -> Request<ClientBody> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(body).expect("valid request")
    }

    fn full(body: impl Into<Bytes>) -> ClientBody {
        Full::new(body.into()).boxed()
    }

    async fn send(sender: &mut SendRequest<ClientBody>, req: Request<ClientBody>) -> Reply {
        sender.ready().await.expect("connection ready");
        let resp = sender.send_request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// One request on its own connection.
    async fn call(
        t: &DemoTarget,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let (mut sender, _conn) = connect(t.addr()).await;
        let body = body.to_string();
        send(&mut sender, request(method, path, headers, full(body))).await
    }

    async fn get(t: &DemoTarget, path: &str) -> Reply {
        call(t, Method::GET, path, &[], "").await
    }

    async fn login(t: &DemoTarget, username: &str) -> String {
        let body = serde_json::json!({"username": username, "password": "secret"}).to_string();
        let reply = call(t, Method::POST, "/login", &[("content-type", JSON)], &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["token"]
            .as_str()
            .expect("token string")
            .to_string()
    }

    /// A request body delivered as `remaining` bytes in `chunk`-sized frames
    /// with no length known up front (so it goes out chunked).
    struct Chunked {
        remaining: usize,
        chunk: Bytes,
    }

    impl hyper::body::Body for Chunked {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            let n = self.remaining.min(self.chunk.len());
            self.remaining -= n;
            Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
        }
    }

    #[tokio::test]
    async fn home_page_and_head() {
        let t = start().await;
        assert_eq!(
            t.base_url(),
            format!("http://127.0.0.1:{}", t.addr().port())
        );
        let home = get(&t, "/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert_eq!(home.headers[CONTENT_TYPE], HTML);
        assert!(home.text().contains("Welcome to the Hopper demo shop"));
        assert!(home.body.len() < 1024);

        let head = call(&t, Method::HEAD, "/", &[], "").await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(t.counters().get("HEAD", "/", 200), 1);
        assert_eq!(t.counters().get("GET", "/", 200), 1);
    }

    #[tokio::test]
    async fn fast_is_ok() {
        let t = start().await;
        let r = get(&t, "/fast").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), "ok");
        assert_eq!(r.headers[CONTENT_TYPE], TEXT);
    }

    #[tokio::test]
    async fn slow_waits_and_validates() {
        let t = start().await;
        let r = get(&t, "/slow?ms=1").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["delay_ms"], 1);

        let r = get(&t, "/slow").await;
        assert_eq!(r.status, StatusCode::OK);
        let delay = r.json()["delay_ms"].as_u64().expect("delay_ms");
        assert!((50..=150).contains(&delay), "{delay}");

        let r = get(&t, "/slow?ms=soon").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json()["error"].is_string());
        assert_eq!(t.counters().get("GET", "/slow", 200), 2);
        assert_eq!(t.counters().get("GET", "/slow", 400), 1);
    }

    #[test]
    fn slow_query_parsing() {
        assert_eq!(slow_delay_ms(None), Ok(None));
        assert_eq!(slow_delay_ms(Some("x=1")), Ok(None));
        assert_eq!(slow_delay_ms(Some("x=1&ms=5")), Ok(Some(5)));
        assert_eq!(slow_delay_ms(Some("ms=99999999")), Ok(Some(MAX_SLOW_MS)));
        assert_eq!(slow_delay_ms(Some("ms=-1")), Err(()));
        assert_eq!(slow_delay_ms(Some("ms=")), Err(()));
    }

    #[tokio::test]
    async fn login_validation() {
        let t = start().await;
        assert!(!login(&t, "alice").await.is_empty());

        let cases: [(&str, StatusCode); 7] = [
            ("not json", StatusCode::BAD_REQUEST),
            ("", StatusCode::BAD_REQUEST),
            (r#"{"username": "alice"}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"username": 5, "password": "x"}"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"{"username": "", "password": "x"}"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"{"username": "alice", "password": "wrong"}"#,
                StatusCode::UNAUTHORIZED,
            ),
            (r#"{"username": "bob", "password": ""}"#, StatusCode::OK),
        ];
        for (body, expected) in cases {
            let r = call(&t, Method::POST, "/login", &[], body).await;
            assert_eq!(r.status, expected, "body {body:?}: {}", r.text());
            let doc = r.json();
            if expected == StatusCode::OK {
                assert!(doc["token"].is_string());
            } else {
                assert!(doc["error"].is_string(), "{doc}");
            }
        }

        let long_name = "x".repeat(MAX_USERNAME_BYTES + 1);
        let body = serde_json::json!({"username": long_name, "password": "p"}).to_string();
        let r = call(&t, Method::POST, "/login", &[], &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        let huge = "a".repeat(MAX_JSON_BODY + 1);
        let r = call(&t, Method::POST, "/login", &[], &huge).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

        let r = get(&t, "/login").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers[ALLOW], "POST");

        let c = t.counters();
        assert_eq!(c.get("POST", "/login", 200), 2);
        assert_eq!(c.get("POST", "/login", 400), 6);
        assert_eq!(c.get("POST", "/login", 401), 1);
        assert_eq!(c.get("POST", "/login", 413), 1);
        assert_eq!(c.get("GET", "/login", 405), 1);
        assert_eq!(c.total(), 11);
    }

    #[tokio::test]
    async fn products_list_and_lookup() {
        let t = start().await;
        let r = get(&t, "/products").await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.json();
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 10);
        for (i, p) in list.iter().enumerate() {
            assert_eq!(p["id"], i as u64 + 1);
            assert!(p["name"].is_string());
            assert!(p["price"].as_f64().expect("price") > 0.0);
        }

        let r = get(&t, "/products/3").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), list[2]);

        for missing in [
            "/products/0",
            "/products/11",
            "/products/abc",
            "/products/",
            "/products/1/x",
        ] {
            let r = get(&t, missing).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
            assert!(r.json()["error"].is_string());
        }
        assert_eq!(t.counters().get("GET", "/products/{id}", 404), 5);
        assert_eq!(t.counters().get("GET", "/products/{id}", 200), 1);
    }

    #[tokio::test]
    async fn login_account_purchase_flow() {
        let t = start().await;
        let token = login(&t, "alice ✓").await;
        let bearer = format!("Bearer {token}");

        let r = call(
            &t,
            Method::GET,
            "/account",
            &[("authorization", &bearer)],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["username"], "alice ✓");

        // The scheme is case-insensitive.
        let lower = format!("bearer {token}");
        let r = call(
            &t,
            Method::GET,
            "/account",
            &[("authorization", &lower)],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);

        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = format!("Bearer {}", String::from_utf8(tampered).unwrap());
        let other = start().await;
        let foreign = format!("Bearer {}", login(&other, "alice ✓").await);
        for auth in [
            None,
            Some("Bearer nope"),
            Some(token.as_str()),
            Some(&tampered),
            Some(&foreign),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let r = call(&t, Method::GET, "/account", &headers, "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(r.headers[WWW_AUTHENTICATE], "Bearer");
            assert!(r.json()["error"].is_string());
        }

        let auth = [("authorization", bearer.as_str()), ("content-type", JSON)];
        let r = call(
            &t,
            Method::POST,
            "/purchase",
            &auth,
            r#"{"product_id": 2, "quantity": 3}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let order = r.json();
        assert_eq!(order["order_id"], 1);
        assert_eq!(order["product_id"], 2);
        assert_eq!(order["quantity"], 3);
        assert_eq!(order["total"], 37.5);
        assert_eq!(order["username"], "alice ✓");

        let r = call(
            &t,
            Method::POST,
            "/purchase",
            &auth,
            r#"{"product_id": 1, "quantity": 1}"#,
        )
        .await;
        assert_eq!(r.json()["order_id"], 2);

        // The buyer fetches what it created; nobody else sees it.
        let r = call(&t, Method::GET, "/orders/1", &auth, "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json(), order);
        let bob = format!("Bearer {}", login(&t, "bob").await);
        for (path, headers) in [
            ("/orders/1", vec![("authorization", bob.as_str())]),
            ("/orders/99", auth.to_vec()),
            ("/orders/x", auth.to_vec()),
        ] {
            let r = call(&t, Method::GET, path, &headers, "").await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = call(&t, Method::GET, "/orders/1", &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = call(
            &t,
            Method::POST,
            "/purchase",
            &[],
            r#"{"product_id": 1, "quantity": 1}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(
            &t,
            Method::POST,
            "/purchase",
            &[("authorization", &foreign)],
            "{}",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        for bad in [
            "",
            "{}",
            r#"{"product_id": 1}"#,
            r#"{"product_id": 1, "quantity": 0}"#,
            r#"{"product_id": 1, "quantity": -1}"#,
        ] {
            let r = call(&t, Method::POST, "/purchase", &auth, bad).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(r.json()["error"].is_string());
        }
        let r = call(
            &t,
            Method::POST,
            "/purchase",
            &auth,
            r#"{"product_id": 99, "quantity": 1}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let c = t.counters();
        assert_eq!(c.get("GET", "/account", 200), 2);
        assert_eq!(c.get("GET", "/account", 401), 5);
        assert_eq!(c.get("POST", "/purchase", 201), 2);
        assert_eq!(c.get("POST", "/purchase", 401), 2);
        assert_eq!(c.get("POST", "/purchase", 400), 5);
        assert_eq!(c.get("POST", "/purchase", 404), 1);
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let tokens = Tokens {
            key: RandomState::new(),
        };
        for name in ["a", "alice", "名前", "with space"] {
            assert_eq!(tokens.verify(&tokens.issue(name)).as_deref(), Some(name));
        }
        let good = tokens.issue("alice");
        for bad in [
            "",
            "00",
            &good[..33],
            &good[..good.len() - 2],
            "ü".repeat(20).as_str(),
            // A non-hex digit in the nonce, the MAC, and the username.
            &format!("g{}", &good[1..]),
            &format!("{}g{}", &good[..16], &good[17..]),
            &format!("{}g{}", &good[..32], &good[33..]),
            // Well-formed, but the username ("alicf") does not match the MAC.
            &format!("{}66", &good[..good.len() - 2]),
        ] {
            assert_eq!(tokens.verify(bad), None, "{bad:?}");
        }
        let other = Tokens {
            key: RandomState::new(),
        };
        assert_eq!(other.verify(&good), None);
    }

    #[tokio::test]
    async fn flaky_fails_sometimes() {
        let t = start().await;
        let (mut sender, _conn) = connect(t.addr()).await;
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..300 {
            let r = send(&mut sender, request(Method::GET, "/flaky", &[], full(""))).await;
            match r.status {
                StatusCode::OK => ok += 1,
                StatusCode::INTERNAL_SERVER_ERROR => failed += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        // With p = 0.1, all-200 or all-500 in 300 tries is astronomically unlikely.
        assert!(ok > 0 && failed > 0, "ok={ok} failed={failed}");
        assert_eq!(t.counters().get("GET", "/flaky", 200), ok);
        assert_eq!(t.counters().get("GET", "/flaky", 500), failed);
    }

    #[tokio::test]
    async fn upload_counts_streamed_and_multipart_bodies() {
        let t = start().await;
        let (mut sender, _conn) = connect(t.addr()).await;

        const SIZE: usize = 5 * 1024 * 1024;
        let body = Chunked {
            remaining: SIZE,
            chunk: Bytes::from(vec![b'x'; 64 * 1024 + 3]),
        };
        let r = send(
            &mut sender,
            request(Method::POST, "/upload", &[], body.boxed()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["bytes"], SIZE as u64);

        let multipart =
            "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n--XYZ--\r\n";
        let headers = [("content-type", "multipart/form-data; boundary=XYZ")];
        let r = send(
            &mut sender,
            request(Method::POST, "/upload", &headers, full(multipart)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["bytes"], multipart.len() as u64);

        let r = send(&mut sender, request(Method::POST, "/upload", &[], full(""))).await;
        assert_eq!(r.json()["bytes"], 0);
        assert_eq!(t.counters().get("POST", "/upload", 200), 3);
        assert_eq!(t.counters().upload_bytes(), (SIZE + multipart.len()) as u64);
        let doc: Value = serde_json::from_slice(&get(&t, COUNTERS_PATH).await.body).unwrap();
        assert_eq!(doc["upload_bytes"], (SIZE + multipart.len()) as u64);
        t.counters().reset();
        assert_eq!(t.counters().upload_bytes(), 0);
    }

    #[tokio::test]
    async fn compressed_serves_each_encoding_of_one_text() {
        use std::io::Read;
        let t = start().await;
        let plain = get(&t, "/compressed?enc=identity").await;
        assert_eq!(plain.status, StatusCode::OK);
        assert!(plain.headers.get(CONTENT_ENCODING).is_none());
        let products: Value = plain.json();
        assert_eq!(products.as_array().unwrap().len(), 160);
        assert_eq!(products[10]["name"], "Hopper T-shirt");
        for enc in ["gzip", "deflate", "br"] {
            let r = get(&t, &format!("/compressed?enc={enc}")).await;
            assert_eq!(r.headers[CONTENT_ENCODING], enc);
            assert_eq!(r.headers[VARY], "Accept-Encoding");
            assert!(
                r.body.len() < plain.body.len() / 4,
                "{enc}: {}",
                r.body.len()
            );
            let mut decoded = Vec::new();
            match enc {
                "gzip" => flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut decoded),
                "deflate" => flate2::read::ZlibDecoder::new(&r.body[..]).read_to_end(&mut decoded),
                _ => brotli::Decompressor::new(&r.body[..], 4096).read_to_end(&mut decoded),
            }
            .unwrap();
            assert!(decoded == plain.body, "{enc}");
        }
        // Negotiated from Accept-Encoding when not asked for.
        let r = call(
            &t,
            Method::GET,
            "/compressed",
            &[("accept-encoding", "gzip, deflate")],
            "",
        )
        .await;
        assert_eq!(r.headers[CONTENT_ENCODING], "gzip");
        let r = get(&t, "/compressed").await;
        assert!(r.headers.get(CONTENT_ENCODING).is_none());
        let r = get(&t, "/compressed?enc=zstd").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(t.counters().get("GET", "/compressed", 200), 6);
        assert_eq!(t.counters().get("GET", "/compressed", 400), 1);
    }

    #[tokio::test]
    async fn status_codes() {
        let t = start().await;
        for code in [200u16, 201, 204, 301, 304, 404, 418, 500, 503, 599] {
            let r = get(&t, &format!("/status/{code}")).await;
            assert_eq!(r.status.as_u16(), code);
            assert!(r.body.is_empty());
        }
        let r = call(&t, Method::DELETE, "/status/202", &[], "").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        for bad in ["99", "100", "101", "199", "600", "abc", "", "-200"] {
            let r = get(&t, &format!("/status/{bad}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(r.json()["error"].is_string());
        }
        let c = t.counters();
        assert_eq!(c.get("GET", "/status/{code}", 418), 1);
        assert_eq!(c.get("DELETE", "/status/{code}", 202), 1);
        assert_eq!(c.get("GET", "/status/{code}", 400), 8);
        assert_eq!(c.total(), 19);
    }

    #[tokio::test]
    async fn redirect_and_cookies() {
        let t = start().await;
        let r = get(&t, "/redirect").await;
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.headers[LOCATION], "/");

        let r = get(&t, "/cookie/set").await;
        assert_eq!(r.status, StatusCode::OK);
        let set = r.headers[SET_COOKIE].to_str().unwrap();
        assert!(set.starts_with("session=abc"), "{set}");

        let check = |cookies: &'static [&'static str]| {
            let headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", *c)).collect();
            let t = &t;
            async move {
                call(t, Method::GET, "/cookie/check", &headers, "")
                    .await
                    .status
            }
        };
        assert_eq!(check(&["session=abc"]).await, StatusCode::OK);
        assert_eq!(check(&["a=1; session=abc; b=2"]).await, StatusCode::OK);
        assert_eq!(check(&["a=1", "session=abc"]).await, StatusCode::OK);
        assert_eq!(check(&[]).await, StatusCode::UNAUTHORIZED);
        assert_eq!(check(&["session=abcd"]).await, StatusCode::UNAUTHORIZED);
        assert_eq!(check(&["xsession=abc"]).await, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn unknown_paths_and_methods() {
        let t = start().await;
        for path in ["/nope", "/fast/", "/FAST", "/cookie"] {
            let r = get(&t, path).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(r.json()["error"], "not found");
        }
        let r = call(&t, Method::POST, "/fast", &[], "x").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers[ALLOW], "GET, HEAD");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        let r = call(&t, custom, "/products", &[], "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

        let c = t.counters();
        assert_eq!(c.get("GET", "(unmatched)", 404), 4);
        assert_eq!(c.get("POST", "/fast", 405), 1);
        assert_eq!(c.get("OTHER", "/products", 405), 1);
        // Unlabelled methods read the OTHER counter; unknown routes read 0.
        assert_eq!(c.get("PURGE", "/products", 405), 1);
        assert_eq!(c.get("GET", "/missing", 404), 0);
        assert_eq!(c.get("GET", "(unmatched)", 100), 0);
        assert_eq!(c.total(), 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counters_are_exact_and_endpoint_is_uncounted() {
        let t = start().await;
        const CONNS: usize = 4;
        const PER_CONN: usize = 50;
        let paths = ["/fast", "/products/1", "/nope", "/status/503", "/slow?ms=0"];
        let mut clients = JoinSet::new();
        for _ in 0..CONNS {
            let addr = t.addr();
            clients.spawn(async move {
                let (mut sender, _conn) = connect(addr).await;
                for i in 0..PER_CONN {
                    let path = paths[i % paths.len()];
                    send(&mut sender, request(Method::GET, path, &[], full(""))).await;
                }
            });
        }
        while let Some(done) = clients.join_next().await {
            done.expect("client task");
        }

        let c = t.counters();
        let each = (CONNS * PER_CONN / paths.len()) as u64;
        assert_eq!(c.total(), (CONNS * PER_CONN) as u64);
        let expected: BTreeMap<CounterKey, u64> = [
            ("/fast", 200),
            ("/products/{id}", 200),
            ("(unmatched)", 404),
            ("/status/{code}", 503),
            ("/slow", 200),
        ]
        .into_iter()
        .map(|(route, status)| {
            (
                CounterKey {
                    route,
                    method: "GET",
                    status,
                },
                each,
            )
        })
        .collect();
        assert_eq!(c.snapshot(), expected);

        // Reading the counters over HTTP, repeatedly, leaves them unchanged.
        let (mut sender, _conn) = connect(t.addr()).await;
        for _ in 0..3 {
            let r = send(
                &mut sender,
                request(Method::GET, COUNTERS_PATH, &[], full("")),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            let doc = r.json();
            assert_eq!(doc["total"], (CONNS * PER_CONN) as u64);
            let entries = doc["requests"].as_array().expect("requests array");
            assert_eq!(entries.len(), expected.len());
            for e in entries {
                let key = CounterKey {
                    route: Route::LABELS
                        .iter()
                        .find(|l| **l == e["route"])
                        .expect("known route"),
                    method: METHOD_LABELS
                        .iter()
                        .find(|l| **l == e["method"])
                        .expect("known method"),
                    status: e["status"].as_u64().expect("status") as u16,
                };
                assert_eq!(
                    Some(&e["count"].as_u64().expect("count")),
                    expected.get(&key)
                );
            }
        }
        let r = send(
            &mut sender,
            request(Method::POST, COUNTERS_PATH, &[], full("")),
        )
        .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(c.total(), (CONNS * PER_CONN) as u64);

        c.reset();
        assert_eq!(c.total(), 0);
        assert!(c.snapshot().is_empty());
        let r = send(
            &mut sender,
            request(Method::GET, COUNTERS_PATH, &[], full("")),
        )
        .await;
        assert_eq!(
            r.json(),
            serde_json::json!({"total": 0, "upload_bytes": 0, "requests": []})
        );
        send(&mut sender, request(Method::GET, "/fast", &[], full(""))).await;
        assert_eq!(c.get("GET", "/fast", 200), 1);
        assert_eq!(c.total(), 1);
    }

    #[tokio::test]
    async fn shutdown_closes_connections_and_frees_port() {
        let t = start().await;
        let addr = t.addr();
        let counters = t.counters();
        let (mut sender, conn) = connect(addr).await;
        send(&mut sender, request(Method::GET, "/fast", &[], full(""))).await;

        tokio::time::timeout(BOUND, t.shutdown())
            .await
            .expect("shutdown finishes");
        // The idle keep-alive connection is closed by the server...
        tokio::time::timeout(BOUND, conn)
            .await
            .expect("connection closed")
            .unwrap();
        // ...no new connections are accepted, and the counters outlive the server.
        assert!(TcpStream::connect(addr).await.is_err());
        assert_eq!(counters.total(), 1);
    }

    #[tokio::test]
    async fn drop_aborts_server() {
        let t = start().await;
        let addr = t.addr();
        let (mut sender, conn) = connect(addr).await;
        send(&mut sender, request(Method::GET, "/fast", &[], full(""))).await;
        drop(t);
        tokio::time::timeout(BOUND, conn)
            .await
            .expect("connection closed")
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn connectable_replaces_unspecified_ip() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(connectable(v4), "127.0.0.1:8080".parse().unwrap());
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(connectable(v6), "[::1]:8080".parse().unwrap());
        let fixed: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(connectable(fixed), fixed);
    }
}
