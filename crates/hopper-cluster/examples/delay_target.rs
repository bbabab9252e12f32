//! An HTTP target that answers after a known delay, for the benchmark's accuracy scenario.
//!
//! Every request (any method, any path except the two below) waits before its `200 ok`:
//! 1 ms for 60 % of requests, 10 ms for 35 %, 100 ms for 5 %. Which delay a request gets is
//! decided by its arrival number, cycling through a fixed pattern of 20 slots (12 × 1 ms,
//! 7 × 10 ms, 1 × 100 ms, spread out), so the mix is exact rather than random. The target
//! measures each delay it actually served (from the moment it got the request to the moment
//! it hands back the response, so timer slack counts) and keeps every one of them: the true
//! percentiles a load generator's report is compared with.
//!
//! * `GET /__stats`: `{"count", "by_delay_ms": {"1", "10", "100"}, "p50_ms", "p90_ms",
//!   "p99_ms", "p999_ms", "min_ms", "max_ms"}` over the delays served since the last reset
//!   (nearest-rank percentiles of the exact values, microsecond resolution);
//! * `POST /__reset`: forgets them, and restarts the pattern.
//!
//! ```text
//! cargo run --release -p hopper-cluster --example delay_target -- --bind 127.0.0.1:0
//! listening on http://127.0.0.1:40123
//! ```
//!
//! It prints its URL as the first line on stdout, answers until SIGINT/SIGTERM, and serves
//! on 127.0.0.1 only unless told otherwise.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The delays of one 20-request cycle, in ms: 12 × 1, 7 × 10, 1 × 100, interleaved so that
/// any stretch of requests sees the mix.
const PATTERN_MS: [u64; 20] = [
    1, 10, 1, 1, 10, 1, 10, 1, 1, 10, 1, 100, 1, 10, 1, 1, 10, 1, 10, 1,
];

#[derive(Parser, Debug)]
#[command(
    about = "An HTTP target that answers after 1, 10 or 100 ms (60/35/5 %), and reports the delays it served"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
}

/// What the target measured.
#[derive(Default)]
struct Recorded {
    /// Every delay served since the last reset, in µs.
    delays_us: Vec<u64>,
    /// Requests per delay class (1, 10, 100 ms).
    by_class: [u64; 3],
}

struct Target {
    next: AtomicU64,
    recorded: Mutex<Recorded>,
}

impl Target {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats_json(&self) -> String {
        let rec = self.lock();
        let mut sorted = rec.delays_us.clone();
        let by_class = rec.by_class;
        drop(rec);
        sorted.sort_unstable();
        let pct = |q: f64| -> serde_json::Value {
            if sorted.is_empty() {
                return serde_json::Value::Null;
            }
            // Nearest rank: the smallest value with at least q of all values at or below it.
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            serde_json::json!(sorted[rank - 1] as f64 / 1000.0)
        };
        serde_json::json!({
            "count": sorted.len(),
            "by_delay_ms": {"1": by_class[0], "10": by_class[1], "100": by_class[2]},
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "min_ms": sorted.first().map(|v| *v as f64 / 1000.0),
            "max_ms": sorted.last().map(|v| *v as f64 / 1000.0),
        })
        .to_string()
    }

    async fn serve(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let received = Instant::now();
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/__stats") => return reply(StatusCode::OK, self.stats_json()),
            (&Method::POST, "/__reset") => {
                *self.lock() = Recorded::default();
                self.next.store(0, Ordering::Relaxed);
                return reply(StatusCode::OK, "reset".to_string());
            }
            _ => {}
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let delay_ms = PATTERN_MS[(n % PATTERN_MS.len() as u64) as usize];
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let served = received.elapsed().as_micros() as u64;
        let mut rec = self.lock();
        rec.delays_us.push(served);
        rec.by_class[match delay_ms {
            1 => 0,
            10 => 1,
            _ => 2,
        }] += 1;
        drop(rec);
        reply(StatusCode::OK, "ok".to_string())
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn main() {
    let args = Args::parse();
    // Two threads: the target shares the machine with the load generator it measures.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let listener = TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    println!("listening on http://{addr}");
    let target = Arc::new(Target {
        next: AtomicU64::new(0),
        recorded: Mutex::new(Recorded::default()),
    });
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<(), String>(())
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            stopped = &mut stop => return stopped,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, keep serving.
                        eprintln!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let target = Arc::clone(&target);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let target = Arc::clone(&target);
                        async move { Ok::<_, Infallible>(target.serve(req).await) }
                    });
                    // A client that goes away mid-request is no error for the target.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
