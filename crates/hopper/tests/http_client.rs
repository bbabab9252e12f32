//! The HTTP client against a real server (the demo target on 127.0.0.1): request names,
//! Locust's failure texts, `catch_response`, redirects, cookies, timeouts, bodies, and that
//! every request is recorded exactly once.
//!
//! Statistics are process-wide, so each test uses request names of its own and looks only
//! at those.

mod common;

use common::{error_texts, synced_stats, with_demo_target};
use hopper::HttpClient;
use serde_json::json;
use std::time::Duration;

fn entry_counts(name: &str, method: &str) -> (u64, u64) {
    let s = synced_stats();
    let e = s
        .entries
        .get(&(name.to_string(), method.to_string()))
        .unwrap_or_else(|| panic!("no entry for {method} {name}"));
    (e.num_requests, e.num_failures)
}

#[test]
fn names_default_to_path_and_query_and_can_be_overridden() {
    with_demo_target(|mut c, _| async move {
        let r = c.get("/products?page=1").send().await;
        assert_eq!(r.status(), 200);
        c.get("/products/3")
            .name("/products/[id] (named)")
            .send()
            .await;
        c.get("/slow")
            .query(&[("ms", "1"), ("tag", "a b")])
            .send()
            .await;
    });
    assert_eq!(entry_counts("/products?page=1", "GET"), (1, 0));
    assert_eq!(entry_counts("/products/[id] (named)", "GET"), (1, 0));
    assert_eq!(entry_counts("/slow?ms=1&tag=a+b", "GET"), (1, 0));
}

#[test]
fn error_statuses_fail_with_locusts_text() {
    with_demo_target(|mut c, _| async move {
        let r = c.get("/status/404").name("/status404-test").send().await;
        assert_eq!(r.status(), 404);
        assert!(!r.ok());
        c.get("/status/503").name("/status503-test").send().await;
        c.get("/status/302")
            .name("/status302-test")
            .no_redirects()
            .send()
            .await;
    });
    assert_eq!(entry_counts("/status404-test", "GET"), (1, 1));
    assert_eq!(
        error_texts("/status404-test"),
        ["HTTPError('404 Client Error: Not Found for url: /status404-test')"]
    );
    assert_eq!(
        error_texts("/status503-test"),
        ["HTTPError('503 Server Error: Service Unavailable for url: /status503-test')"]
    );
    // 3xx without following is not a failure, as in requests.
    assert_eq!(entry_counts("/status302-test", "GET"), (1, 0));
}

#[test]
fn catch_response_overrides_the_status_rule() {
    with_demo_target(|mut c, _| async move {
        let mut r = c
            .get("/status/404")
            .name("/catch-ok")
            .catch_response()
            .send()
            .await;
        r.success();
        drop(r);
        let mut r = c.get("/").name("/catch-fail").catch_response().send().await;
        assert!(r.text().contains("Welcome"));
        r.failure("no 'Welcome' expected");
        drop(r);
        // Neither called: the status rule applies when the response is dropped.
        let r = c
            .get("/status/500")
            .name("/catch-default")
            .catch_response()
            .send()
            .await;
        drop(r);
    });
    assert_eq!(entry_counts("/catch-ok", "GET"), (1, 0));
    assert_eq!(entry_counts("/catch-fail", "GET"), (1, 1));
    assert_eq!(
        error_texts("/catch-fail"),
        ["CatchResponseError(\"no 'Welcome' expected\")"]
    );
    assert_eq!(entry_counts("/catch-default", "GET"), (1, 1));
}

#[test]
fn redirects_are_followed_and_named_by_the_first_url() {
    with_demo_target(|mut c, _| async move {
        let r = c.get("/redirect").send().await;
        assert_eq!(r.status(), 200);
        assert!(r.text().contains("Welcome"));
        assert!(r.url().ends_with('/'), "{}", r.url());
    });
    assert_eq!(entry_counts("/redirect", "GET"), (1, 0));
}

#[test]
fn cookies_are_kept_per_client() {
    with_demo_target(|mut c, base| async move {
        assert_eq!(
            c.get("/cookie/check")
                .name("/cookie-before")
                .send()
                .await
                .status(),
            401
        );
        c.get("/cookie/set").send().await;
        assert_eq!(c.get("/cookie/check").send().await.status(), 200);
        // Another user (client) has its own jar.
        let mut other = HttpClient::new(Some(&base));
        assert_eq!(
            other
                .get("/cookie/check")
                .name("/cookie-other")
                .send()
                .await
                .status(),
            401
        );
    });
}

#[test]
fn json_login_token_and_bearer_header() {
    with_demo_target(|mut c, _| async move {
        let r = c
            .post("/login")
            .json(&json!({"username": "alice", "password": "secret"}))
            .send()
            .await;
        assert_eq!(r.status(), 200);
        let token = r.json::<serde_json::Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = c.get("/account").bearer(&token).send().await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().unwrap()["username"], "alice");
        let r = c
            .post("/purchase")
            .bearer(&token)
            .json(&json!({"product_id": 2, "quantity": 3}))
            .send()
            .await;
        assert_eq!(r.status(), 201);
        let r = c.post("/upload").body(vec![7u8; 300_000]).send().await;
        assert_eq!(r.json::<serde_json::Value>().unwrap()["bytes"], 300_000);
    });
    assert_eq!(entry_counts("/login", "POST"), (1, 0));
    assert_eq!(entry_counts("/purchase", "POST"), (1, 0));
}

#[test]
fn connection_refused_and_bad_urls_are_failures_not_panics() {
    // A port with nothing listening: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    with_demo_target(|mut c, _| async move {
        let r = c
            .get(format!("http://127.0.0.1:{port}/refused"))
            .send()
            .await;
        assert_eq!(r.status(), 0);
        assert_eq!(
            r.error(),
            Some("ConnectionRefusedError(111, 'Connection refused')")
        );
        let mut no_host = HttpClient::new(None);
        let r = no_host.get("/no-host-given").send().await;
        assert_eq!(r.status(), 0);
        assert!(
            r.error().unwrap().starts_with("MissingSchema("),
            "{:?}",
            r.error()
        );
    });
    assert_eq!(entry_counts("/refused", "GET"), (1, 1));
    assert_eq!(entry_counts("/no-host-given", "GET"), (1, 1));
}

#[test]
fn timeouts_fail_the_request_and_the_client_recovers() {
    with_demo_target(|mut c, base| async move {
        let r = c
            .get("/slow?ms=3000")
            .name("/slow-timeout")
            .timeout(Duration::from_millis(100))
            .send()
            .await;
        assert_eq!(r.status(), 0);
        let expected = format!(
            "ReadTimeout(ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port={}): \
             Read timed out. (read timeout=0.1)\"))",
            base.rsplit(':').next().unwrap()
        );
        assert_eq!(r.error(), Some(expected.as_str()));
        // The next request on the same client works (a new connection).
        assert_eq!(
            c.get("/fast")
                .name("/fast-after-timeout")
                .send()
                .await
                .status(),
            200
        );
    });
    assert_eq!(entry_counts("/slow-timeout", "GET"), (1, 1));
    assert_eq!(entry_counts("/fast-after-timeout", "GET"), (1, 0));
}

#[test]
fn many_requests_on_one_connection_are_all_recorded() {
    with_demo_target(|mut c, _| async move {
        for _ in 0..500 {
            c.get("/fast").name("/fast-500").send().await;
        }
    });
    assert_eq!(entry_counts("/fast-500", "GET"), (500, 0));
}

#[test]
fn names_include_the_base_path_and_are_percent_encoded() {
    with_demo_target(|_, base| async move {
        let mut c = HttpClient::new(Some(&format!("{base}/api")));
        // The target has no /api: a 404, named by the path that was sent.
        c.get("/products").send().await;
        let mut c = HttpClient::new(Some(&base));
        let r = c.get("/products?q=hello world").send().await;
        assert_eq!(r.status(), 200);
    });
    assert_eq!(entry_counts("/api/products", "GET"), (1, 1));
    assert_eq!(
        error_texts("/api/products"),
        ["HTTPError('404 Client Error: Not Found for url: /api/products')"]
    );
    assert_eq!(entry_counts("/products?q=hello%20world", "GET"), (1, 0));
}

/// A one-connection-at-a-time HTTP server that answers by path and logs the request line
/// and content type of everything it receives, for checking what the client sends.
async fn echo_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(sock);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let request_line = line.trim().to_string();
                    let (mut length, mut ctype, mut auth) =
                        (0usize, "-".to_string(), "-".to_string());
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).await.unwrap();
                        let h = h.trim().to_string();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => length = v.trim().parse().unwrap(),
                            "content-type" => ctype = v.trim().to_string(),
                            "authorization" => auth = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    seen.lock().unwrap().push(format!(
                        "{request_line} ct={ctype} auth={auth} len={length}"
                    ));
                    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                    let response = match path.as_str() {
                        "/r301" => "HTTP/1.1 301 Moved\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n".to_string(),
                        "/r302" => "HTTP/1.1 302 Found\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n".to_string(),
                        "/r307" => "HTTP/1.1 307 Temporary\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n".to_string(),
                        p if p.starts_with("/away") => format!(
                            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{}/done\r\nContent-Length: 0\r\n\r\n",
                            p.trim_start_matches("/away")
                        ),
                        _ => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
                    };
                    reader
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .unwrap();
                }
            });
        }
    });
    (base, log)
}

#[test]
fn redirects_change_method_and_drop_bodies_like_requests() {
    with_demo_target(|_, _| async move {
        let (base, log) = echo_server().await;
        let port = base.rsplit(':').next().unwrap().to_string();
        let mut c = HttpClient::new(Some(&base));
        let body = serde_json::json!({"a": 1});
        assert_eq!(c.put("/r302").json(&body).send().await.status(), 200);
        assert_eq!(c.post("/r301").json(&body).send().await.status(), 200);
        assert_eq!(c.put("/r301").json(&body).send().await.status(), 200);
        assert_eq!(c.post("/r307").json(&body).send().await.status(), 200);
        // HEAD does not follow redirects by default.
        assert_eq!(c.head("/r302").send().await.status(), 302);
        // Credentials stay with their host.
        c.get(format!("/away{port}")).bearer("secret").send().await;
        let seen = log.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "PUT /r302 HTTP/1.1 ct=application/json auth=- len=7",
                "GET /done HTTP/1.1 ct=- auth=- len=0",
                "POST /r301 HTTP/1.1 ct=application/json auth=- len=7",
                "GET /done HTTP/1.1 ct=- auth=- len=0",
                "PUT /r301 HTTP/1.1 ct=application/json auth=- len=7",
                // 301 keeps PUT, but drops the body and its headers.
                "PUT /done HTTP/1.1 ct=- auth=- len=0",
                "POST /r307 HTTP/1.1 ct=application/json auth=- len=7",
                "POST /done HTTP/1.1 ct=application/json auth=- len=7",
                "HEAD /r302 HTTP/1.1 ct=- auth=- len=0",
                &format!("GET /away{port} HTTP/1.1 ct=- auth=Bearer secret len=0"),
                // 127.0.0.1 -> localhost is another host: no Authorization.
                "GET /done HTTP/1.1 ct=- auth=- len=0",
            ]
        );
    });
}
