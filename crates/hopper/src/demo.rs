//! The built-in demo users that `hopper --demo` runs against the demo target.
//!
//! They are also a tour of the API: a browsing user with weighted tasks, a custom-checked
//! home page and a nested task set it leaves with `interrupt`, and a shopper that logs in
//! once in `on_start`, keeps its token, and sends it as a Bearer header.

use crate::prelude::*;
use serde::Deserialize;

/// State of a browsing visitor: nothing to remember.
#[derive(Default)]
pub struct Visitor;

async fn home(user: &mut User<Visitor>) -> TaskResult {
    let mut r = user.client.get("/").catch_response().send().await;
    if r.ok() && !r.text().contains("Welcome") {
        r.failure("home page without its welcome text");
    }
    Ok(())
}

async fn products(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

async fn product(user: &mut User<Visitor>) -> TaskResult {
    // Ids up to 12 include a few that do not exist: a realistic share of 404s.
    let id = user.rng().u32(1..=12);
    user.client
        .get(format!("/products/{id}"))
        .name("/products/[id]")
        .send()
        .await;
    Ok(())
}

async fn slow(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/slow").send().await;
    Ok(())
}

async fn flaky(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/flaky").send().await;
    Ok(())
}

async fn leave_catalogue(_user: &mut User<Visitor>) -> TaskResult {
    interrupt(false)
}

/// State of a shopper: the token from logging in.
#[derive(Default)]
pub struct Shopper {
    token: String,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(user: &mut User<Shopper>) -> TaskResult {
    let name = format!("shopper{}", user.id());
    let r = user
        .client
        .post("/login")
        .json(&json!({ "username": name, "password": "secret" }))
        .send()
        .await;
    user.token = r.json::<Login>()?.token;
    Ok(())
}

async fn account(user: &mut User<Shopper>) -> TaskResult {
    user.client
        .get("/account")
        .bearer(&user.state.token)
        .send()
        .await;
    Ok(())
}

async fn purchase(user: &mut User<Shopper>) -> TaskResult {
    let product = user.rng().u32(1..=10);
    user.client
        .post("/purchase")
        .bearer(&user.state.token)
        .json(&json!({ "product_id": product, "quantity": 1 }))
        .send()
        .await;
    Ok(())
}

async fn upload(user: &mut User<Shopper>) -> TaskResult {
    user.client
        .post("/upload")
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; 16 * 1024])
        .send()
        .await;
    Ok(())
}

/// The demo's user classes, 3 visitors for each shopper.
pub fn program() -> Hopper {
    let catalogue = TaskSet::new("Catalogue")
        .task(task!(products, 3))
        .task(task!(product, 4))
        .task(task!(leave_catalogue));
    Hopper::new()
        .user(
            UserClass::new("Visitor", Visitor::default)
                .weight(3.0)
                .wait_time(between(0.5, 1.5))
                .task(task!(home, 4))
                .task(Task::from(catalogue).weight(3))
                .task(task!(slow))
                .task(task!(flaky)),
        )
        .user(
            UserClass::new("Shopper", Shopper::default)
                .weight(1.0)
                .wait_time(between(0.5, 1.5))
                .on_start(hook!(login))
                .task(task!(account, 3))
                .task(task!(purchase, 2))
                .task(task!(upload)),
        )
        .with_demo_target()
}
