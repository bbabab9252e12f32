//! Response checks (`expect_status`, `expect_body_contains`, `expect_json`,
//! `expect_json_exists`), values taken from responses for later requests (JSON field,
//! header, cookie, text between markers), and downloads counted by size without keeping the
//! body: in-process against the demo target, and end to end by running the `validation`
//! example and reading its failures file.
//!
//! Statistics are process-wide, so each in-process test uses request names of its own.

mod common;

use common::{
    error_texts, example_bin, run_in, synced_stats, target_count, with_demo_target, Target, TempDir,
};
use hopper::HttpClient;
use serde_json::json;

/// (requests, failures, total content length, max response time in ms) of one entry.
fn entry(name: &str) -> (u64, u64, u64, f64) {
    let s = synced_stats();
    let e = s
        .entries
        .get(&(name.to_string(), "GET".to_string()))
        .unwrap_or_else(|| panic!("no entry for GET {name}"));
    (
        e.num_requests,
        e.num_failures,
        e.total_content_length,
        e.max_response_time,
    )
}

fn counts(name: &str) -> (u64, u64) {
    let (reqs, fails, _, _) = entry(name);
    (reqs, fails)
}

#[test]
fn the_first_failing_check_fails_the_request_once() {
    with_demo_target(|mut c, _| async move {
        let r = c
            .get("/status/404")
            .name("/v-status")
            .expect_status(200)
            .send()
            .await;
        assert!(!r.ok());
        assert_eq!(
            r.error(),
            Some("CatchResponseError('expected status 200, got 404')")
        );
        drop(r);
        let r = c
            .get("/status/404")
            .name("/v-status-expected")
            .expect_status(404)
            .send()
            .await;
        assert!(r.ok(), "{:?}", r.error());
        drop(r);
        c.get("/")
            .name("/v-text-ok")
            .expect_status(200)
            .expect_body_contains("Welcome")
            .send()
            .await;
        c.get("/")
            .name("/v-text")
            .expect_status(200)
            .expect_body_contains("Checkout")
            .expect_json("/never", 1)
            .send()
            .await;
        c.get("/products/1")
            .name("/v-json-ok")
            .expect_json("/price", 19.99)
            .expect_json("/id", 1.0)
            .expect_json_exists("/name")
            .send()
            .await;
        c.get("/products/1")
            .name("/v-json")
            .expect_json("/id", 2)
            .send()
            .await;
        c.get("/products/1")
            .name("/v-json-missing")
            .expect_json_exists("/stock")
            .send()
            .await;
        // Without expect_status the status rule speaks first.
        c.get("/status/500")
            .name("/v-status-rule")
            .expect_body_contains("Checkout")
            .send()
            .await;
        // A pointer without its slash is a script mistake: the request is not sent.
        let r = c
            .get("/products/1")
            .name("/v-bad-pointer")
            .expect_json("id", 1)
            .send()
            .await;
        assert_eq!(r.status(), 0);
    });
    assert_eq!(
        error_texts("/v-status"),
        ["CatchResponseError('expected status 200, got 404')"]
    );
    assert_eq!(counts("/v-status"), (1, 1));
    assert_eq!(counts("/v-status-expected"), (1, 0));
    assert_eq!(counts("/v-text-ok"), (1, 0));
    // The failed request keeps its length and response time.
    let (reqs, fails, length, max_ms) = entry("/v-text");
    assert_eq!((reqs, fails), (1, 1));
    assert!(length > 0 && max_ms > 0.0, "{length} {max_ms}");
    assert_eq!(
        error_texts("/v-text"),
        ["CatchResponseError('body does not contain \"Checkout\"')"]
    );
    assert_eq!(counts("/v-json-ok"), (1, 0));
    assert_eq!(
        error_texts("/v-json"),
        ["CatchResponseError('JSON /id is 1, expected 2')"]
    );
    assert_eq!(
        error_texts("/v-json-missing"),
        ["CatchResponseError('JSON /stock is missing')"]
    );
    assert_eq!(
        error_texts("/v-status-rule"),
        ["HTTPError('500 Server Error: Internal Server Error for url: /v-status-rule')"]
    );
    assert_eq!(
        error_texts("/v-bad-pointer"),
        ["ValueError('\"id\" is not a JSON Pointer: write \"/id\" (RFC 6901)')"]
    );
}

#[test]
fn checks_with_catch_response_can_be_overridden_and_record_once() {
    with_demo_target(|mut c, _| async move {
        let mut r = c
            .get("/fast")
            .name("/v-catch-override")
            .expect_body_contains("Checkout")
            .catch_response()
            .send()
            .await;
        assert!(!r.ok());
        r.success();
        drop(r);
        let r = c
            .get("/fast")
            .name("/v-catch-failed")
            .expect_body_contains("Checkout")
            .catch_response()
            .send()
            .await;
        drop(r);
        let mut r = c
            .get("/status/404")
            .name("/v-catch-own")
            .expect_status(404)
            .catch_response()
            .send()
            .await;
        if let Err(e) = r.json_str("/token") {
            r.failure(e);
        }
    });
    assert_eq!(counts("/v-catch-override"), (1, 0));
    assert_eq!(counts("/v-catch-failed"), (1, 1));
    assert_eq!(
        error_texts("/v-catch-failed"),
        ["CatchResponseError('body does not contain \"Checkout\"')"]
    );
    assert_eq!(counts("/v-catch-own"), (1, 1));
    assert!(error_texts("/v-catch-own")[0].starts_with("CatchResponseError('body is not JSON: "));
}

#[test]
fn connection_errors_keep_their_own_text() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = HttpClient::new(Some(&format!("http://127.0.0.1:{port}")));
        let r = c
            .get("/")
            .name("/v-refused")
            .expect_status(200)
            .expect_body_contains("x")
            .send()
            .await;
        assert_eq!(r.status(), 0);
    });
    assert_eq!(counts("/v-refused"), (1, 1));
    assert_eq!(
        error_texts("/v-refused"),
        ["ConnectionRefusedError(111, 'Connection refused')"]
    );
}

#[test]
fn discarded_bodies_are_counted_by_size() {
    with_demo_target(|mut c, _| async move {
        let kept = c.get("/products").name("/v-kept").send().await;
        assert!(!kept.bytes().is_empty());
        let r = c
            .get("/products")
            .name("/v-discarded")
            .discard_body()
            .send()
            .await;
        assert!(r.ok());
        assert!(r.bytes().is_empty() && r.text().is_empty());
        // A check that reads the body still sees it.
        let r = c
            .get("/products")
            .name("/v-discarded-checked")
            .discard_body()
            .expect_json("/0/id", 1)
            .send()
            .await;
        assert!(r.ok(), "{:?}", r.error());
        assert!(r.bytes().is_empty());
        // The redirect's own body is skipped; the final one is counted.
        c.get("/redirect")
            .name("/v-redirect-discarded")
            .discard_body()
            .expect_status(200)
            .send()
            .await;
        c.get("/").name("/v-home-kept").send().await;
    });
    let (_, _, kept, _) = entry("/v-kept");
    assert!(kept > 100, "{kept}");
    assert_eq!(entry("/v-discarded").2, kept);
    assert_eq!(entry("/v-discarded-checked").2, kept);
    assert_eq!(counts("/v-redirect-discarded"), (1, 0));
    assert_eq!(entry("/v-redirect-discarded").2, entry("/v-home-kept").2);
}

#[test]
fn values_carry_from_one_response_to_the_next() {
    with_demo_target(|mut c, _| async move {
        let r = c
            .post("/login")
            .json(&json!({"username": "ann", "password": "secret"}))
            .expect_json_exists("/token")
            .send()
            .await;
        let token = r.json_str("/token").expect("a token");
        assert_eq!(
            r.json_str("/nope").unwrap_err().to_string(),
            "JSON /nope is missing"
        );
        let r = c
            .get("/account")
            .name("/v-account")
            .bearer(&token)
            .expect_status(200)
            .expect_json("/username", "ann")
            .send()
            .await;
        assert!(r.ok(), "{:?}", r.error());
        assert_eq!(r.json_field("/plan").unwrap(), json!("demo"));

        let r = c.get("/redirect").no_redirects().send().await;
        assert_eq!(r.header_str("location").unwrap(), "/");

        let session = c.get("/cookie/set").send().await.cookie("session").unwrap();
        assert_eq!(session, "abc");
        c.clear_cookies();
        let r = c
            .get("/cookie/check")
            .name("/v-cookie")
            .header("cookie", format!("session={session}"))
            .send()
            .await;
        assert_eq!(r.status(), 200);

        let r = c.get("/").send().await;
        assert_eq!(
            r.body_between("<h1>", "</h1>").unwrap(),
            "Welcome to the Hopper demo shop"
        );
    });
    assert_eq!(counts("/v-account"), (1, 0));
    assert_eq!(counts("/v-cookie"), (1, 0));
}

/// Splits one CSV line written with Python's `csv` quoting (fields with `,` or `"` quoted,
/// quotes doubled).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[test]
fn the_example_records_check_failures_with_locusts_texts_and_keys() {
    let target = Target::start();
    let dir = TempDir::new("validation");
    let out = run_in(
        &example_bin("validation"),
        dir.path(),
        &[
            "-H",
            target.url(),
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "2s",
            "--csv",
            "out",
        ],
    );
    let counters = target.finish();
    let summary = out.summary();
    let dump = out.dump();

    // Shopper's checks all pass; each of Doubter's requests fails, except the expected 404.
    for name in [
        "/login",
        "home",
        "/account",
        "/redirect",
        "redirect target",
        "/cookie/set",
        "/cookie/check",
        "/products (size only)",
        "/purchase",
        "/orders/[id]",
        "/products",
        "/products/[id]",
        "expected 404",
    ] {
        let method = if name == "/login" || name == "/purchase" {
            "POST"
        } else {
            "GET"
        };
        let row = summary
            .row(method, name)
            .unwrap_or_else(|| panic!("no row {method} {name}\n{dump}"));
        assert!(row.reqs > 0 && row.fails == 0, "{row:?}\n{dump}");
    }
    let expected = [
        (
            "wrong status",
            "CatchResponseError('expected status 200, got 404')",
        ),
        (
            "wrong text",
            "CatchResponseError('body does not contain \"Checkout\"')",
        ),
        (
            "wrong price",
            "CatchResponseError('JSON /price is 19.99, expected 5')",
        ),
        (
            "missing field",
            "CatchResponseError('JSON /stock is missing')",
        ),
        (
            "not JSON",
            "CatchResponseError('body is not JSON: expected value at line 1 column 1')",
        ),
    ];
    for (name, _) in expected {
        let row = summary
            .row("GET", name)
            .unwrap_or_else(|| panic!("no row GET {name}\n{dump}"));
        assert!(row.reqs > 0 && row.fails == row.reqs, "{row:?}\n{dump}");
    }

    // The failures file: exactly one kind per failing name, with Locust's text, and as many
    // occurrences as the row has failures.
    let csv = std::fs::read_to_string(dir.path().join("out_failures.csv")).expect("failures csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("Method,Name,Error,Occurrences,First Seen,Last Seen")
    );
    let mut found: Vec<(String, String, u64)> = lines
        .map(csv_fields)
        .map(|f| (f[1].clone(), f[2].clone(), f[3].parse().unwrap()))
        .collect();
    found.sort();
    let mut want: Vec<(String, String, u64)> = expected
        .iter()
        .map(|(name, error)| {
            let fails = summary.row("GET", name).unwrap().fails;
            (name.to_string(), error.to_string(), fails)
        })
        .collect();
    want.sort();
    assert_eq!(found, want, "{csv}\n{dump}");

    // The key is Locust's: sha256(f"{method}.{name}.{repr(error)}"), computed with Python.
    assert_eq!(
        hopper_stats::error_key(
            "GET",
            "wrong status",
            "CatchResponseError('expected status 200, got 404')"
        ),
        "e7dac89e8197c4830ca368dab75cb474d9326fb500dd78a5474b1acade8ff665"
    );
    assert_eq!(
        hopper_stats::error_key(
            "GET",
            "wrong text",
            "CatchResponseError('body does not contain \"Checkout\"')"
        ),
        "b0d9343c5b7d0aec86a789342a00eb0722c94a535fe40df42890805db69c83d3"
    );

    // The target saw the token on every /account request and the cookie value on every
    // /cookie/check request: all answered 200, none 401.
    let snapshot = counters.snapshot();
    let account = summary.row("GET", "/account").unwrap().reqs;
    assert_eq!(counters.get("GET", "/account", 200), account, "{dump}");
    assert_eq!(target_count(&snapshot, "GET", "/account"), account);
    let check = summary.row("GET", "/cookie/check").unwrap().reqs;
    assert_eq!(counters.get("GET", "/cookie/check", 200), check, "{dump}");
    assert_eq!(target_count(&snapshot, "GET", "/cookie/check"), check);
    // Every order fetched was one the shopper had just created, with its own token: each
    // answered 200. (A purchase whose user stopped before the fetch has no fetch.)
    let fetched = summary.row("GET", "/orders/[id]").unwrap().reqs;
    let bought = summary.row("POST", "/purchase").unwrap().reqs;
    assert_eq!(counters.get("GET", "/orders/{id}", 200), fetched, "{dump}");
    assert!(fetched <= bought && bought <= fetched + 2, "{dump}");
    // Hopper counted every request the target answered, the expected 404s as successes.
    assert_eq!(summary.aggregated.reqs, counters.total(), "{dump}");
    let doubted_404s = summary.row("GET", "wrong status").unwrap().reqs
        + summary.row("GET", "expected 404").unwrap().reqs;
    assert_eq!(counters.get("GET", "/status/{code}", 404), doubted_404s);
}
