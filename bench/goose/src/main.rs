//! Hopper's throughput benchmark user, for Goose: GET one path as fast as possible, no wait.
//!
//! It mirrors `examples/throughput.rs` (Hopper) and the Locust file that `bench/run.py`
//! writes: one scenario, one transaction, no wait time, every user repeating the request on
//! its own keep-alive connection. The path is `/fast` unless the `BENCH_PATH` variable says
//! otherwise (Goose owns the command line, so the benchmark passes it through the
//! environment). Everything else is Goose's own command line:
//!
//! ```text
//! hopper-bench-goose --host http://127.0.0.1:8080 --users 50 --hatch-rate 50 --run-time 15 --no-reset-metrics
//! ```

use goose::prelude::*;

/// The request path: `BENCH_PATH`, or `/fast`.
fn path() -> String {
    std::env::var("BENCH_PATH").unwrap_or_else(|_| "/fast".to_string())
}

async fn fast(user: &mut GooseUser) -> TransactionResult {
    // Read once per process, not once per request.
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(path);
    let _goose = user.get(path).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenario!("Throughput").register_transaction(transaction!(fast)))
        .execute()
        .await?;
    Ok(())
}
