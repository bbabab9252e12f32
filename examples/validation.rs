//! Checking responses and carrying values from one response into later requests.
//!
//! `Shopper` logs in, keeps the token from the JSON reply and sends it with later requests,
//! follows a redirect by hand with the `Location` header, sends a cookie's value back
//! itself, fetches an order it just created by the id in the creation's reply, and picks a
//! product id out of the catalogue with a regular expression. Every check it makes passes against the demo target. `Doubter` expects the wrong
//! things on purpose, so the failures table shows each kind of reason a check gives.
//!
//! The Locust equivalent:
//!
//! ```python
//! class Shopper(HttpUser):
//!     wait_time = constant(0.02)
//!
//!     def on_start(self):
//!         with self.client.post("/login", json={"username": "shopper", "password": "secret"},
//!                               catch_response=True) as r:
//!             if r.status_code != 200:
//!                 r.failure(f"expected status 200, got {r.status_code}")
//!             elif "token" not in r.json():
//!                 r.failure("JSON /token is missing")
//!         self.token = r.json()["token"]
//!
//!     @task
//!     def home(self):
//!         with self.client.get("/", name="home", catch_response=True) as r:
//!             if r.status_code != 200:
//!                 r.failure(f"expected status 200, got {r.status_code}")
//!             elif "Welcome" not in r.text:
//!                 r.failure('body does not contain "Welcome"')
//!
//!     @task
//!     def account(self):
//!         with self.client.get("/account", headers={"Authorization": f"Bearer {self.token}"},
//!                              catch_response=True) as r:
//!             if r.status_code != 200:
//!                 r.failure(f"expected status 200, got {r.status_code}")
//!             elif r.json().get("plan") != "demo":
//!                 r.failure(f"JSON /plan is {r.json().get('plan')!r}, expected 'demo'")
//!
//!     @task
//!     def follow_redirect(self):
//!         r = self.client.get("/redirect", allow_redirects=False)
//!         self.client.get(r.headers["Location"], name="redirect target")
//!
//!     @task
//!     def cookie(self):
//!         session = self.client.get("/cookie/set").cookies["session"]
//!         self.client.cookies.clear()
//!         self.client.get("/cookie/check", headers={"Cookie": f"session={session}"})
//!
//!     @task
//!     def catalogue(self):
//!         self.client.get("/products", name="/products (size only)", stream=True).close()
//!
//!     @task
//!     def order_then_fetch(self):
//!         auth = {"Authorization": f"Bearer {self.token}"}
//!         order = self.client.post("/purchase", json={"product_id": 2, "quantity": 3},
//!                                  headers=auth).json()
//!         with self.client.get(f"/orders/{order['order_id']}", name="/orders/[id]",
//!                              headers=auth, catch_response=True) as r:
//!             if r.json().get("order_id") != order["order_id"]:
//!                 r.failure("not the order just made")
//!
//!     @task
//!     def first_product(self):
//!         text = self.client.get("/products").text
//!         product_id = re.search(r'"id":\s*(\d+)', text).group(1)
//!         self.client.get(f"/products/{product_id}", name="/products/[id]")
//!
//! class Doubter(HttpUser):  # one of its checks, written the same way:
//!     @task
//!     def doubt(self):
//!         with self.client.get("/status/404", name="wrong status", catch_response=True) as r:
//!             if r.status_code != 200:
//!                 r.failure(f"expected status 200, got {r.status_code}")
//! ```
//!
//! Python's `stream=True` records the `Content-Length` header as the size; `discard_body()`
//! counts the bytes that arrived.
//!
//! ```text
//! cargo run --release --bin hopper-demo-target &     # a target on 127.0.0.1:8080
//! cargo run --release --example validation -- -H http://127.0.0.1:8080 --headless -u 2 -r 2 -t 10s
//! ```

use hopper::prelude::*;
use hopper::Regex;
use std::sync::LazyLock;

/// A shopper's own data: the token from logging in.
#[derive(Default)]
struct Shopper {
    token: String,
}

/// `on_start`: log in; the request fails unless the reply is a 200 with a token, and the
/// token is kept for later requests (`?` ends the user when there is none, as a `KeyError`
/// would in Locust).
async fn login(user: &mut User<Shopper>) -> TaskResult {
    let username = format!("shopper{}", user.id());
    let r = user
        .client
        .post("/login")
        .json(&json!({ "username": username, "password": "secret" }))
        .expect_status(200)
        .expect_json_exists("/token")
        .send()
        .await;
    user.token = r.json_str("/token")?;
    Ok(())
}

async fn home(user: &mut User<Shopper>) -> TaskResult {
    user.client
        .get("/")
        .name("home")
        .expect_status(200)
        .expect_body_contains("Welcome")
        .send()
        .await;
    Ok(())
}

/// Correlation by JSON field: the token from `/login` opens `/account`.
async fn account(user: &mut User<Shopper>) -> TaskResult {
    user.client
        .get("/account")
        .bearer(&user.state.token)
        .expect_status(200)
        .expect_json("/plan", "demo")
        .send()
        .await;
    Ok(())
}

/// Correlation by header: take `Location` from a redirect and follow it by hand.
async fn follow_redirect(user: &mut User<Shopper>) -> TaskResult {
    let r = user
        .client
        .get("/redirect")
        .no_redirects()
        .expect_status(302)
        .send()
        .await;
    let next = r.header_str("location")?.to_string();
    user.client
        .get(next)
        .name("redirect target")
        .expect_body_contains("Welcome")
        .send()
        .await;
    Ok(())
}

/// Correlation by cookie: read the value a response sets and send it back in a header of
/// our own (the cookie jar would do this by itself; here the jar is emptied first).
async fn cookie(user: &mut User<Shopper>) -> TaskResult {
    let session = user
        .client
        .get("/cookie/set")
        .send()
        .await
        .cookie("session")?;
    user.client.clear_cookies();
    user.client
        .get("/cookie/check")
        .header("cookie", format!("session={session}"))
        .expect_body_contains("cookie ok")
        .send()
        .await;
    Ok(())
}

/// A download counted by its size without keeping the body.
async fn catalogue(user: &mut User<Shopper>) -> TaskResult {
    user.client
        .get("/products")
        .name("/products (size only)")
        .discard_body()
        .send()
        .await;
    Ok(())
}

/// Correlation of a created resource: buy, take the new order's id from the reply, then
/// fetch that order (only its buyer's token may) and check it is the one just made.
async fn order_then_fetch(user: &mut User<Shopper>) -> TaskResult {
    let created = user
        .client
        .post("/purchase")
        .bearer(&user.state.token)
        .json(&json!({ "product_id": 2, "quantity": 3 }))
        .expect_status(201)
        .send()
        .await;
    let id = created.json_field("/order_id")?;
    user.client
        .get(format!("/orders/{id}"))
        .name("/orders/[id]")
        .bearer(&user.state.token)
        .expect_status(200)
        .expect_json("/order_id", id)
        .expect_json("/quantity", 3)
        .send()
        .await;
    Ok(())
}

/// The first product id in the catalogue, found with a regular expression.
static FIRST_PRODUCT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""id":\s*(\d+)"#).expect("a valid regular expression"));

/// Correlation by regular expression: pick the first product id out of the catalogue's
/// text and open that product.
async fn first_product(user: &mut User<Shopper>) -> TaskResult {
    let catalogue = user.client.get("/products").send().await;
    let id = catalogue.regex(&FIRST_PRODUCT)?;
    user.client
        .get(format!("/products/{id}"))
        .name("/products/[id]")
        .expect_json("/id", id.parse::<u64>().map_err(TaskError::failed)?)
        .send()
        .await;
    Ok(())
}

/// Expectations that are wrong on purpose: each request below fails with the reason shown.
async fn doubt(user: &mut User<()>) -> TaskResult {
    // CatchResponseError('expected status 200, got 404')
    user.client
        .get("/status/404")
        .name("wrong status")
        .expect_status(200)
        .send()
        .await;
    // CatchResponseError('body does not contain "Checkout"')
    user.client
        .get("/fast")
        .name("wrong text")
        .expect_body_contains("Checkout")
        .send()
        .await;
    // CatchResponseError('JSON /price is 19.99, expected 5')
    user.client
        .get("/products/1")
        .name("wrong price")
        .expect_json("/price", 5)
        .send()
        .await;
    // CatchResponseError('JSON /stock is missing')
    user.client
        .get("/products/1")
        .name("missing field")
        .expect_json_exists("/stock")
        .send()
        .await;
    // CatchResponseError('body is not JSON: expected value at line 1 column 1')
    user.client
        .get("/")
        .name("not JSON")
        .expect_json_exists("/title")
        .send()
        .await;
    // An error status that is expected is a success.
    user.client
        .get("/status/404")
        .name("expected 404")
        .expect_status(404)
        .send()
        .await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Shopper", Shopper::default)
                .wait_time(constant(0.02))
                .on_start(hook!(login))
                .task(task!(home))
                .task(task!(account))
                .task(task!(follow_redirect))
                .task(task!(cookie))
                .task(task!(catalogue))
                .task(task!(order_then_fetch))
                .task(task!(first_product)),
        )
        .user(
            UserClass::new("Doubter", || ())
                .wait_time(constant(0.02))
                .task(task!(doubt)),
        )
        .main()
}
