//! Test data from CSV files: each account logs in once (a queue that ends the test), each
//! order is placed once (a queue that stops users), and products are browsed in file order,
//! in random order and shuffled. The files are in `examples/data/`, read relative to the
//! working directory; each is loaded and checked at start-up, and a broken one stops the
//! program with a message naming the file and line.
//!
//! The Locust equivalent, by hand with `csv.DictReader` (the `locust-plugins` `CSVReader`
//! does the circular case):
//!
//! ```python
//! import csv, itertools, random
//! from locust import HttpUser, task, constant
//! from locust.exception import StopUser
//!
//! def read(path):
//!     with open(path, newline="") as f:
//!         return list(csv.DictReader(f))
//!
//! def shuffled(rows):
//!     while True:
//!         order = rows[:]
//!         random.shuffle(order)
//!         yield from order
//!
//! ACCOUNTS = iter(read("examples/data/accounts.csv"))   # each row once, per worker
//! ORDERS = iter(read("examples/data/orders.csv"))
//! PRODUCTS = read("examples/data/products.csv")
//! CIRCULAR = itertools.cycle(PRODUCTS)
//! SHUFFLED = shuffled(PRODUCTS)
//!
//! class Login(HttpUser):
//!     wait_time = constant(0.05)
//!     @task
//!     def log_in(self):
//!         row = next(ACCOUNTS, None)
//!         if row is None:
//!             self.environment.runner.quit()            # Exhausted::StopTest
//!             raise StopUser()
//!         self.client.post("/login", name="/login",
//!                          json={"username": row["username"], "password": row["password"]})
//!
//! class Buyer(HttpUser):
//!     wait_time = constant(0.05)
//!     def on_start(self):
//!         r = self.client.post("/login", json={"username": "buyer", "password": "secret"})
//!         self.token = r.json()["token"]
//!     @task
//!     def purchase(self):
//!         row = next(ORDERS, None)
//!         if row is None:
//!             raise StopUser()                          # Exhausted::StopUser
//!         self.client.post("/purchase", name="/purchase",
//!                          headers={"Authorization": f"Bearer {self.token}"},
//!                          json={"product_id": int(row["product_id"]),
//!                                "quantity": int(row["quantity"])})
//!
//! class Browse(HttpUser):
//!     wait_time = constant(0.1)
//!     @task
//!     def product(self):
//!         self.client.get(f"/products/{next(CIRCULAR)['id']}")
//!
//! class RandomBrowse(HttpUser):      # random.choice(PRODUCTS)
//! class ShuffledBrowse(HttpUser):    # next(SHUFFLED)
//! ```
//!
//! In master/worker mode each Locust worker has its own iterators, so every worker logs in
//! with every account. Here a Hopper master hands each account out once across all workers.
//!
//! Run it against the demo target (`cargo run --release --bin hopper-demo-target` in another
//! terminal listens on 127.0.0.1:8080), from the workspace root:
//!
//! ```text
//! cargo run --example feeders -- -H http://127.0.0.1:8080 --headless -u 5 -r 5 -t 30s Login
//! cargo run --example feeders -- -H http://127.0.0.1:8080 --headless -u 3 -r 3 -t 10s Buyer Browse
//! ```
//!
//! `Login` ends the test by itself once every account has logged in (one of them has the
//! password `wrong`, which the demo target refuses with 401).

use hopper::prelude::*;
use serde::Deserialize;

/// Accounts to log in with, each once; the test ends when none is left.
fn accounts() -> Feeder {
    Feeder::csv("examples/data/accounts.csv")
        .mode(FeedMode::Queue)
        .when_exhausted(Exhausted::StopTest)
        .require(["username", "password"])
}

/// Orders to place, each once; a user that finds none left stops.
fn orders() -> Feeder {
    Feeder::csv("examples/data/orders.csv")
        .mode(FeedMode::Queue)
        .when_exhausted(Exhausted::StopUser)
        .require(["product_id", "quantity"])
}

/// Product ids to browse, in the given order (feeder names must be unique).
fn products(mode: FeedMode, name: &str) -> Feeder {
    Feeder::csv("examples/data/products.csv")
        .name(name)
        .mode(mode)
        .require(["id"])
}

/// A user that only reads rows: its feeder.
struct Reader {
    rows: Feeder,
}

/// `POST /login` with the next account; `?` stops the user when there is none.
async fn log_in(user: &mut User<Reader>) -> TaskResult {
    let row = user.rows.next().await?;
    user.client
        .post("/login")
        .name("/login")
        .json(&json!({
            "username": row.field("username")?,
            "password": row.field("password")?,
        }))
        .send()
        .await;
    Ok(())
}

/// `GET /products/{id}` with the next id, recorded under its own URL so each row shows.
async fn product(user: &mut User<Reader>) -> TaskResult {
    let row = user.rows.next().await?;
    let path = format!("/products/{}", row.field("id")?);
    user.client.get(path).send().await;
    Ok(())
}

/// A buyer: its orders feeder and the token from logging in.
struct Buyer {
    orders: Feeder,
    token: String,
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
}

async fn buyer_login(user: &mut User<Buyer>) -> TaskResult {
    let username = format!("buyer{}", user.id());
    let reply = user
        .client
        .post("/login")
        .json(&json!({ "username": username, "password": "secret" }))
        .send()
        .await;
    user.token = reply.json::<LoginReply>()?.token;
    Ok(())
}

/// `POST /purchase` with the next order; numbers that do not parse fail the task.
async fn purchase(user: &mut User<Buyer>) -> TaskResult {
    let row = user.orders.next().await?;
    let product_id: u64 = row.field("product_id")?.parse()?;
    let quantity: u64 = row.field("quantity")?.parse()?;
    user.client
        .post("/purchase")
        .name("/purchase")
        .bearer(&user.state.token)
        .json(&json!({ "product_id": product_id, "quantity": quantity }))
        .send()
        .await;
    Ok(())
}

fn main() {
    let accounts = accounts();
    let orders = orders();
    let circular = products(FeedMode::Circular, "products");
    let random = products(FeedMode::Random, "products-random");
    let shuffled = products(FeedMode::Shuffle, "products-shuffled");
    let reader = |feeder: &Feeder| {
        let feeder = feeder.clone();
        move || Reader {
            rows: feeder.clone(),
        }
    };
    let buyer_orders = orders.clone();
    Hopper::new()
        .feeder(&accounts)
        .feeder(&orders)
        .feeder(&circular)
        .feeder(&random)
        .feeder(&shuffled)
        .user(
            UserClass::new("Login", reader(&accounts))
                .wait_time(constant(0.05))
                .task(task!(log_in)),
        )
        .user(
            UserClass::new("Buyer", move || Buyer {
                orders: buyer_orders.clone(),
                token: String::new(),
            })
            .wait_time(constant(0.05))
            .on_start(hook!(buyer_login))
            .task(task!(purchase)),
        )
        .user(
            UserClass::new("Browse", reader(&circular))
                .wait_time(constant(0.1))
                .task(task!(product)),
        )
        .user(
            UserClass::new("RandomBrowse", reader(&random))
                .wait_time(constant(0.1))
                .task(task!(product)),
        )
        .user(
            UserClass::new("ShuffledBrowse", reader(&shuffled))
                .wait_time(constant(0.1))
                .task(task!(product)),
        )
        .main()
}
