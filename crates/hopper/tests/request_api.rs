//! Custom requests (Locust's `events.request.fire` and `measure`): anything timed by user
//! code lands in the same statistics as HTTP requests.

use hopper::request::{fire, measure};
use std::time::Duration;

#[test]
fn fire_and_measure_record_requests_and_failures() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        fire("TCP", "connect", Some(Duration::from_millis(12)), 40, None);
        fire(
            "TCP",
            "connect",
            None,
            0,
            Some("ConnectionResetError(104, 'Connection reset by peer')"),
        );
        let ok: Result<u32, std::io::Error> = measure("REDIS", "GET key", 5, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(7)
        })
        .await;
        assert_eq!(ok.unwrap(), 7);
        let err: Result<(), String> = measure("REDIS", "GET key", 0, async {
            Err("WRONGTYPE".to_string())
        })
        .await;
        assert_eq!(err.unwrap_err(), "WRONGTYPE");
    });
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    let stats = hopper_stats::global().lock();
    let tcp = &stats.entries[&("connect".to_string(), "TCP".to_string())];
    assert_eq!(
        (tcp.num_requests, tcp.num_failures, tcp.num_none_requests),
        (2, 1, 1)
    );
    assert_eq!(tcp.total_content_length, 40);
    let redis = &stats.entries[&("GET key".to_string(), "REDIS".to_string())];
    assert_eq!((redis.num_requests, redis.num_failures), (2, 1));
    assert!(
        redis.max_response_time >= 20.0,
        "{}",
        redis.max_response_time
    );
    assert!(stats
        .errors
        .values()
        .any(|e| e.method == "REDIS" && e.error == "WRONGTYPE"));
    assert_eq!(stats.total.num_requests, 4);
}
