//! The benchmark's library baseline: the plainest load loop hyper allows, for comparison
//! with Hopper's throughput user, which sends its requests through hyper too.
//!
//! `connections` tasks on tokio's multi-threaded runtime (all cores, as Hopper) each open
//! one HTTP/1.1 keep-alive connection (hyper's `client::conn::http1`, its connection driven
//! by a task of its own, as Hopper drives it) and send `GET path` with a `Host` header as
//! fast as the answers come, reading each body to its end and timing each request into an
//! HDR histogram. Nothing else: no user loop, no statistics by name, no failure texts, no
//! cookies or redirects. What Hopper spends per request beyond this loop is the cost of its
//! features; what this loop spends beyond wrk is hyper's and tokio's.
//!
//! After `duration` seconds it prints one JSON line: `{"requests", "failures", "rps",
//! "p50_ms", "p90_ms", "p99_ms"}` (failures: non-2xx answers and broken connections; a
//! task whose connection broke opens a new one).
//!
//! ```text
//! cargo run --release -p hopper-http --example hyper_baseline -- http://127.0.0.1:8080/fast 50 10
//! ```

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What one connection's task counted.
struct Counts {
    requests: u64,
    failures: u64,
    /// Response times in microseconds.
    times: Histogram<u64>,
}

fn usage() -> ExitCode {
    eprintln!("usage: hyper_baseline http://HOST:PORT/PATH CONNECTIONS SECONDS");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, connections, seconds] = args.as_slice() else {
        return usage();
    };
    let (Ok(uri), Ok(connections), Ok(seconds)) = (
        url.parse::<http::Uri>(),
        connections.parse::<usize>(),
        seconds.parse::<f64>(),
    ) else {
        return usage();
    };
    let (Some(authority), Some("http")) = (uri.authority().cloned(), uri.scheme_str()) else {
        eprintln!("hyper_baseline: only http:// URLs with a host: {url}");
        return ExitCode::from(2);
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hyper_baseline: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    let totals = runtime.block_on(async move {
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(connection_loop(authority.clone(), path.clone(), end)))
            .collect();
        let mut totals = Counts {
            requests: 0,
            failures: 0,
            times: Histogram::new(3).expect("3 significant digits are valid"),
        };
        for task in tasks {
            if let Ok(c) = task.await {
                totals.requests += c.requests;
                totals.failures += c.failures;
                // Same configuration on both sides: adding cannot fail.
                let _ = totals.times.add(&c.times);
            }
        }
        totals
    });
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| totals.times.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "requests": totals.requests,
            "failures": totals.failures,
            "rps": totals.requests as f64 / elapsed,
            "p50_ms": ms(0.50),
            "p90_ms": ms(0.90),
            "p99_ms": ms(0.99),
        })
    );
    ExitCode::SUCCESS
}

/// One connection's requests until `end`; a broken connection is replaced.
async fn connection_loop(authority: http::uri::Authority, path: String, end: Instant) -> Counts {
    let mut counts = Counts {
        requests: 0,
        failures: 0,
        times: Histogram::new(3).expect("3 significant digits are valid"),
    };
    let host = http::HeaderValue::from_str(authority.as_str()).expect("an authority is ASCII");
    'connections: while Instant::now() < end {
        let Ok(tcp) = tokio::net::TcpStream::connect(authority.as_str()).await else {
            counts.failures += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok((mut send, conn)) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await
        else {
            counts.failures += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < end {
            let request = http::Request::get(path.as_str())
                .header(http::header::HOST, host.clone())
                .body(Empty::new())
                .expect("a valid path and header");
            let sent = Instant::now();
            let Ok(response) = send.send_request(request).await else {
                counts.failures += 1;
                continue 'connections;
            };
            let ok = response.status().is_success();
            if response.into_body().collect().await.is_err() {
                counts.failures += 1;
                continue 'connections;
            }
            counts.requests += 1;
            counts.failures += u64::from(!ok);
            let _ = counts.times.record(sent.elapsed().as_micros() as u64);
        }
    }
    counts
}
