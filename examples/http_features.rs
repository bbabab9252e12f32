//! The HTTP client's features in one user: compressed responses, a multipart upload, a file
//! streamed as the body, the per-request options, and the timing breakdown recorded as a
//! request of its own (`TTFB /products`).
//!
//! The Locust equivalent (requests decodes gzip, deflate and br by itself; `r.elapsed` is
//! requests' time until the response head, the nearest thing to Hopper's time to first
//! byte):
//!
//! ```python
//! import random
//! from locust import HttpUser, task, between
//!
//! UPLOAD_FILE = "examples/http_features.rs"
//!
//! class FeaturesUser(HttpUser):
//!     wait_time = between(0.1, 0.3)
//!
//!     def on_start(self):
//!         r = self.client.post("/login", json={"username": "features", "password": "secret"})
//!         self.token = r.json()["token"]
//!
//!     @task(2)
//!     def compressed(self):
//!         for enc in ("gzip", "deflate", "br"):
//!             with self.client.get(f"/compressed?enc={enc}", name="/compressed?enc=[enc]",
//!                                  catch_response=True) as r:
//!                 if r.json()[0]["name"] != "Hopper T-shirt":
//!                     r.failure("unexpected first product")
//!
//!     @task
//!     def multipart_upload(self):
//!         with open(UPLOAD_FILE, "rb") as f:
//!             self.client.post("/upload", name="/upload (multipart)",
//!                              data={"title": "quarterly report"},
//!                              files={"report": f,
//!                                     "notes": ("notes.txt", b"three short notes", "text/plain")})
//!
//!     @task
//!     def file_body(self):
//!         with open(UPLOAD_FILE, "rb") as f:
//!             self.client.post("/upload", name="/upload (file)", data=f)
//!
//!     @task(2)
//!     def options(self):
//!         self.client.get("/slow", params={"ms": "10"}, timeout=2, name="/slow")
//!         self.client.get("/redirect", allow_redirects=False)
//!         self.client.get("/account", headers={"Authorization": f"Bearer {self.token}",
//!                                              "X-Example": "http_features"})
//!         self.client.get(f"/products/{random.randint(1, 10)}", name="/products/[id]")
//!
//!     @task
//!     def timings(self):
//!         r = self.client.get("/products")
//!         self.environment.events.request.fire(
//!             request_type="TTFB", name="/products", response_length=0, exception=None,
//!             response_time=r.elapsed.total_seconds() * 1000, context={})
//! ```
//!
//! Run it against the demo target (`cargo run --release --bin hopper-demo-target` in another
//! terminal):
//!
//! ```text
//! cargo run --release --example http_features -- -H http://127.0.0.1:8080 --headless -u 5 -r 5 -t 10s
//! ```
//!
//! Three environment variables, all optional: `HTTP_FEATURES_FILE`, the file to upload (by
//! default this source file); `HTTP_FEATURES_PROXY`, a forward proxy
//! (`http://[user:pass@]host:port`) for every request; `HTTP_FEATURES_INSECURE=1`, to accept
//! a self-signed certificate on an `https://` host (requests' `verify=False`).

use hopper::prelude::*;
use hopper_http::{Multipart, Part, Proxy};
use std::path::PathBuf;
use std::time::Duration;

/// Each user's token from logging in.
#[derive(Default)]
struct FeaturesUser {
    token: String,
}

/// The file both uploads send: `HTTP_FEATURES_FILE`, else this example's own source.
fn upload_file() -> PathBuf {
    std::env::var_os("HTTP_FEATURES_FILE").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../examples/http_features.rs"
            ))
        },
        PathBuf::from,
    )
}

/// `on_start`: log in and keep the token for `/account`.
async fn login(user: &mut User<FeaturesUser>) -> TaskResult {
    let r = user
        .client
        .post("/login")
        .json(&json!({ "username": "features", "password": "secret" }))
        .send()
        .await;
    user.state.token = r.json_str("/token")?;
    Ok(())
}

/// The same JSON in three encodings, decoded as it arrives; the checks read the decoded
/// text, and the recorded length is the decoded one.
async fn compressed(user: &mut User<FeaturesUser>) -> TaskResult {
    for enc in ["gzip", "deflate", "br"] {
        user.client
            .get("/compressed")
            .query(&[("enc", enc)])
            .name("/compressed?enc=[enc]")
            .expect_json("/0/name", "Hopper T-shirt")
            .send()
            .await;
    }
    Ok(())
}

/// A text field, a file streamed from disk and bytes from memory in one multipart body.
async fn multipart_upload(user: &mut User<FeaturesUser>) -> TaskResult {
    let form = Multipart::new()
        .text("title", "quarterly report")
        .file("report", upload_file())
        .part(
            Part::bytes("notes", "three short notes")
                .filename("notes.txt")
                .content_type("text/plain"),
        );
    user.client
        .post("/upload")
        .multipart(form)
        .name("/upload (multipart)")
        .expect_json_exists("/bytes")
        .send()
        .await;
    Ok(())
}

/// A raw body read from the file while it is sent; the target answers how many bytes it
/// got, which must be the file's size.
async fn file_body(user: &mut User<FeaturesUser>) -> TaskResult {
    let path = upload_file();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    user.client
        .post("/upload")
        .body_file(path)
        .name("/upload (file)")
        .expect_json("/bytes", size)
        .send()
        .await;
    Ok(())
}

/// The per-request options: query, timeout, no redirects, bearer token and a header, and a
/// name for URLs with ids in them.
async fn options(user: &mut User<FeaturesUser>) -> TaskResult {
    let c = &mut user.client;
    c.get("/slow")
        .query(&[("ms", "10")])
        .timeout(Duration::from_secs(2))
        .name("/slow")
        .send()
        .await;
    // A 302 not followed is a success, as in requests.
    c.get("/redirect").no_redirects().send().await;
    c.get("/account")
        .bearer(&user.state.token)
        .header("X-Example", "http_features")
        .send()
        .await;
    let id = fastrand::u8(1..=10);
    c.get(format!("/products/{id}"))
        .name("/products/[id]")
        .send()
        .await;
    Ok(())
}

/// `GET /products`, then its time to first byte recorded as a request of its own. (Connect
/// and TLS times are `Some` only on a new connection; they are logged at debug level.)
async fn timings(user: &mut User<FeaturesUser>) -> TaskResult {
    let r = user.client.get("/products").send().await;
    let t = r.timings();
    if let Some(ttfb) = t.ttfb {
        hopper::request::fire("TTFB", "/products", Some(ttfb), 0, None);
    }
    tracing::debug!(
        "GET /products: connect {:?}, tls {:?}, ttfb {:?}, total {:?}",
        t.connect,
        t.tls,
        t.ttfb,
        t.total
    );
    Ok(())
}

fn main() {
    let proxy = std::env::var("HTTP_FEATURES_PROXY").ok();
    let insecure = std::env::var("HTTP_FEATURES_INSECURE").is_ok_and(|v| v == "1");
    Hopper::new()
        .user(
            UserClass::new("FeaturesUser", FeaturesUser::default)
                .wait_time(between(0.1, 0.3))
                .client_config(move |c| {
                    c.proxy = proxy.as_deref().map(Proxy::new);
                    c.tls.accept_invalid_certs(insecure);
                })
                .on_start(hook!(login))
                .task(task!(compressed, 2))
                .task(task!(multipart_upload))
                .task(task!(file_body))
                .task(task!(options, 2))
                .task(task!(timings)),
        )
        .main()
}
