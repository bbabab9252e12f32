//! Tests against payloads produced by real Locust 2.47.0 (`testdata/*.msgpack`, written by
//! `testdata/gen_fixtures.py` with Locust's own `Message.serialize()` and stats classes), the
//! byte examples of the reference's §6.12, and fuzz-style robustness checks.

use std::collections::BTreeMap;

use hopper_stats::{RequestStats, StatsEntry};
use rmpv::Value;

use super::*;

const NODE_ID: &str = "vm_dca15e4818dd491385edaa317193beae";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `.msgpack` fixture, by name.
fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".msgpack"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `hex` of the bytes spelled as in §6.12: hex runs and quoted ASCII.
fn bytes_of(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        if let Some(text) = p.strip_prefix('"') {
            out.extend_from_slice(text.trim_end_matches('"').as_bytes());
        } else {
            let h: String = p.split_whitespace().collect();
            for i in (0..h.len()).step_by(2) {
                out.push(u8::from_str_radix(&h[i..i + 2], 16).unwrap());
            }
        }
    }
    out
}

/// Decodes a fixture, checks type and node id, and checks that re-encoding gives its bytes.
fn decode_fixture(name: &str, kind: &str) -> Message {
    let bytes = fixture(name);
    let m = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        (m.kind.as_str(), m.node_id.as_str()),
        (kind, NODE_ID),
        "{name}"
    );
    assert_eq!(hex(&m.encode()), hex(&bytes), "{name} re-encoded");
    m
}

#[test]
fn ack_matches_locust_and_the_reference() {
    let m = decode_fixture("ack.msgpack", kind::ACK);
    let ack = Ack::from_value(&m.data).unwrap();
    assert_eq!(
        ack,
        Ack {
            index: 0,
            hopper: None
        }
    );
    let ours = Message::new(kind::ACK, ack.to_value(), NODE_ID).encode();
    assert_eq!(ours, fixture("ack.msgpack"));
    // §6.12: 93 a3 "ack" 81 a5 "index" 00 d9 23 <35-byte id>.
    assert_eq!(
        ours,
        bytes_of(&[
            "93 a3",
            "\"ack\"",
            "81 a5",
            "\"index\"",
            "00 d9 23",
            &format!("\"{NODE_ID}\"")
        ])
    );
    let m = decode_fixture("ack_index_300.msgpack", kind::ACK);
    assert_eq!(Ack::from_value(&m.data).unwrap().index, 300);
    // A Hopper master's ack: Locust workers only look for "index".
    let hopper = Ack {
        index: 0,
        hopper: Some("0.1.0".into()),
    }
    .to_value();
    let want = bytes_of(&[
        "93 a3",
        "\"ack\"",
        "82 a5",
        "\"index\"",
        "00 a6",
        "\"hopper\"",
        "a5",
        "\"0.1.0\"",
        "d9 23",
    ]);
    assert!(Message::new(kind::ACK, hopper, NODE_ID)
        .encode()
        .starts_with(&want));
}

#[test]
fn heartbeats_match_locust_and_the_reference() {
    let m = decode_fixture("heartbeat_master.msgpack", kind::HEARTBEAT);
    assert_eq!(m.data, Value::Nil);
    assert_eq!(
        Message::new(kind::HEARTBEAT, Value::Nil, NODE_ID).encode(),
        bytes_of(&[
            "93 a9",
            "\"heartbeat\"",
            "c0 d9 23",
            &format!("\"{NODE_ID}\"")
        ])
    );

    let m = decode_fixture("heartbeat_worker.msgpack", kind::HEARTBEAT);
    let beat = Heartbeat::from_value(&m.data).unwrap();
    assert_eq!(
        beat,
        Heartbeat {
            state: "running".into(),
            current_cpu_usage: 12.5,
            current_memory_usage: 123_456_789,
        }
    );
    let ours = Message::new(kind::HEARTBEAT, beat.to_value(), NODE_ID).encode();
    assert_eq!(ours, fixture("heartbeat_worker.msgpack"));
    // §6.12: 93 a9 "heartbeat" 83 a5 "state" a7 "running" b1 "current_cpu_usage" cb <f64>
    // b4 "current_memory_usage" <int> d9 23 <id>.
    let want = bytes_of(&[
        "93 a9",
        "\"heartbeat\"",
        "83 a5",
        "\"state\"",
        "a7",
        "\"running\"",
        "b1",
        "\"current_cpu_usage\"",
        "cb 4029000000000000 b4",
        "\"current_memory_usage\"",
        "ce 075bcd15 d9 23",
        &format!("\"{NODE_ID}\""),
    ]);
    assert_eq!(hex(&ours), hex(&want));
}

#[test]
fn client_ready_matches_locust() {
    let m = decode_fixture("client_ready.msgpack", kind::CLIENT_READY);
    let ready = ClientReady::from_value(&m.data).unwrap();
    assert_eq!(ready, ClientReady::Version("2.47.0".into()));
    assert_eq!(
        Message::new(kind::CLIENT_READY, ready.to_value(), NODE_ID).encode(),
        bytes_of(&[
            "93 ac",
            "\"client_ready\"",
            "a6",
            "\"2.47.0\"",
            "d9 23",
            &format!("\"{NODE_ID}\"")
        ])
    );
    let m = decode_fixture("client_ready_skip.msgpack", kind::CLIENT_READY);
    let skip = ClientReady::from_value(&m.data).unwrap();
    assert_eq!(skip, ClientReady::SkipVersionCheck);
    assert_eq!(
        Message::new(kind::CLIENT_READY, skip.to_value(), NODE_ID).encode(),
        fixture("client_ready_skip.msgpack")
    );
}

#[test]
fn control_messages_match_locust() {
    for (name, k) in [
        ("spawning.msgpack", kind::SPAWNING),
        ("stop.msgpack", kind::STOP),
        ("quit.msgpack", kind::QUIT),
    ] {
        let m = decode_fixture(name, k);
        assert_eq!(m.data, Value::Nil);
        assert_eq!(Message::new(k, Value::Nil, NODE_ID).encode(), fixture(name));
    }

    let m = decode_fixture("spawning_complete_worker.msgpack", kind::SPAWNING_COMPLETE);
    let sc = SpawningComplete::from_value(&m.data).unwrap();
    assert_eq!(sc.user_count, 7);
    assert_eq!(
        sc.user_classes_count,
        [("OtherUser".to_string(), 5), ("WebUser".to_string(), 2)].into()
    );
    assert_eq!(
        Message::new(kind::SPAWNING_COMPLETE, sc.to_value(), NODE_ID).encode(),
        fixture("spawning_complete_worker.msgpack")
    );
    let m = decode_fixture("spawning_complete_master.msgpack", kind::SPAWNING_COMPLETE);
    assert_eq!(spawning_complete_user_count(&m.data), Ok(7));
    assert_eq!(
        Message::new(
            kind::SPAWNING_COMPLETE,
            spawning_complete_for_worker(7),
            NODE_ID
        )
        .encode(),
        fixture("spawning_complete_master.msgpack")
    );

    let m = decode_fixture("exception.msgpack", kind::EXCEPTION);
    let e = ExceptionReport::from_value(&m.data).unwrap();
    assert_eq!(e.msg, "division by zero");
    assert!(e
        .traceback
        .starts_with("  File \"/app/locustfile.py\", line 12"));
    assert_eq!(
        Message::new(kind::EXCEPTION, e.to_value(), NODE_ID).encode(),
        fixture("exception.msgpack")
    );

    let m = decode_fixture("logs.msgpack", kind::LOGS);
    let l = Logs::from_value(&m.data).unwrap();
    assert_eq!(l.worker_id, NODE_ID);
    assert_eq!(l.logs.len(), 1);
    assert_eq!(
        Message::new(kind::LOGS, l.to_value(), NODE_ID).encode(),
        fixture("logs.msgpack")
    );
}

#[test]
fn spawn_matches_locust() {
    let bytes = fixture("spawn.msgpack");
    // §6.12: 93 a5 "spawn" 85 a9 "timestamp" cb <f64> b2 "user_classes_count" 82 ...
    assert!(bytes.starts_with(&bytes_of(&[
        "93 a5",
        "\"spawn\"",
        "85 a9",
        "\"timestamp\"",
        "cb"
    ])));
    let m = decode_fixture("spawn.msgpack", kind::SPAWN);
    let sp = Spawn::from_value(&m.data).unwrap();
    assert_eq!(sp.timestamp, 1795238526.123456);
    assert_eq!(
        sp.user_classes_count,
        [("OtherUser".to_string(), 3), ("WebUser".to_string(), 1)].into()
    );
    assert_eq!(sp.host.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(sp.stop_timeout, 0.0);
    // Real `vars(parsed_options)`: 56 options, kept as sent.
    let opts = sp.parsed_options.as_map().unwrap();
    assert_eq!(opts.len(), 56);
    let get = |k: &str| {
        opts.iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("tags"),
        Some(Value::Array(vec![Value::from("a"), Value::from("b")]))
    );
    assert_eq!(get("web_port"), Some(Value::from(8089u64)));
    assert_eq!(get("autoquit"), Some(Value::from(-1i64)));
    assert_eq!(get("num_users"), Some(Value::Nil));
    assert_eq!(
        Message::new(kind::SPAWN, sp.to_value(), NODE_ID).encode(),
        bytes
    );

    let m = decode_fixture("spawn_nil_host.msgpack", kind::SPAWN);
    let sp = Spawn::from_value(&m.data).unwrap();
    assert_eq!((sp.host, sp.stop_timeout), (None, 0.0));
    assert!(sp.user_classes_count.is_empty());
}

#[test]
fn custom_messages_and_datetimes_pass_through() {
    let m = decode_fixture("custom_datetime.msgpack", "my_custom");
    let data = m.data.as_map().unwrap();
    let when = &data[0].1;
    assert_eq!(
        special_object(when),
        Some(SpecialObject::Datetime("20250102T03:04:05.678901"))
    );
    assert_eq!(
        data[1].1,
        Value::Array(vec![
            Value::from(1u64),
            Value::F64(2.5),
            Value::Nil,
            Value::Boolean(true),
            Value::Binary(vec![0, 0xff]),
        ])
    );
}

#[test]
fn scalars_take_python_widths() {
    let bytes = fixture("scalars.msgpack");
    let v = decode_value(&bytes).unwrap();
    let mut out = Vec::new();
    encode_value(&v, &mut out);
    assert_eq!(out, bytes);
    let items = v.as_array().unwrap();
    assert_eq!(items[9], Value::from(u64::MAX));
    assert_eq!(items[19], Value::from(i64::MIN));
}

/// Checks a decoded entry against Python's view of it (the fixture's JSON sidecar).
fn check_entry(e: &StatsEntry, j: &serde_json::Value) {
    let f = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{k}"));
    let u = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k}"));
    assert_eq!(e.name, j["name"].as_str().unwrap());
    assert_eq!(e.method, j["method"].as_str().unwrap());
    assert_eq!(
        e.last_request_timestamp,
        j["last_request_timestamp"].as_f64()
    );
    assert_eq!(e.start_time, f("start_time"));
    assert_eq!(e.num_requests, u("num_requests"));
    assert_eq!(e.num_none_requests, u("num_none_requests"));
    assert_eq!(e.num_failures, u("num_failures"));
    assert_eq!(e.total_response_time, f("total_response_time"));
    assert_eq!(e.max_response_time, f("max_response_time"));
    assert_eq!(e.min_response_time, j["min_response_time"].as_f64());
    assert_eq!(e.total_content_length, u("total_content_length"));
    let counts = |k: &str| -> BTreeMap<i64, u64> {
        j[k].as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
            .collect()
    };
    let rt: BTreeMap<i64, u64> = e
        .response_times
        .iter()
        .map(|(&k, &v)| (k as i64, v))
        .collect();
    assert_eq!(rt, counts("response_times"));
    assert_eq!(e.num_reqs_per_sec, counts("num_reqs_per_sec"));
    assert_eq!(e.num_fail_per_sec, counts("num_fail_per_sec"));
    assert!(e.hdr.is_empty());
}

fn json_fixture(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[test]
fn locust_stats_report_decodes_field_by_field() {
    let m = decode_fixture_lenient("stats.msgpack");
    let r = StatsReport::from_value_at(&m.data, 0.0).unwrap();
    let j = json_fixture("stats.json");
    let rows = j["stats"].as_array().unwrap();
    assert_eq!(r.report.stats.len(), rows.len());
    for (e, row) in r.report.stats.iter().zip(rows) {
        check_entry(e, row);
    }
    check_entry(&r.report.stats_total, &j["stats_total"]);
    let errs = j["errors"].as_object().unwrap();
    assert_eq!(r.report.errors.len(), errs.len());
    for (key, e) in &r.report.errors {
        let je = &errs[key];
        assert_eq!(e.key(), *key, "Hopper computes Locust's key");
        assert_eq!(e.name, je["name"].as_str().unwrap());
        assert_eq!(e.method, je["method"].as_str().unwrap());
        assert_eq!(e.error, je["error"].as_str().unwrap());
        assert_eq!(e.occurrences, je["occurrences"].as_u64().unwrap());
        assert_eq!(e.first_seen, je["first_seen"].as_f64());
        assert_eq!(e.last_seen, je["last_seen"].as_f64());
    }
    assert_eq!(
        r.user_classes_count,
        [("OtherUser".to_string(), 5), ("WebUser".to_string(), 2)].into()
    );
    assert_eq!(r.user_count, 7);
    assert_eq!(r.extra.len(), 1);
    assert_eq!(r.extra[0].0, "custom");
    assert_eq!(r.hdr, None);

    // Spot checks of Locust's rounding and typing.
    let root = &r.report.stats[0];
    assert_eq!(
        root.response_times,
        [(0, 1), (2, 1), (4, 1), (150, 1), (1200, 1), (59000, 1)].into()
    );
    let fail_only = &r.report.stats[2];
    assert_eq!((fail_only.num_requests, fail_only.num_failures), (0, 2));
    assert_eq!(fail_only.min_response_time, None);
    let missing = &r.report.stats[3];
    assert_eq!((missing.num_requests, missing.num_none_requests), (2, 1));
}

/// Decodes without the byte-exact re-encoding check.
fn decode_fixture_lenient(name: &str) -> Message {
    Message::decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn locust_stats_report_re_encodes_byte_for_byte() {
    // Locust's insertion-ordered dicts equal Hopper's sorted maps here (the generator logs in
    // sorted order), so Hopper writes exactly Locust's bytes, int-or-float typing included.
    for name in ["stats.msgpack", "stats_empty.msgpack"] {
        let bytes = fixture(name);
        let m = Message::decode(&bytes).unwrap();
        let r = StatsReport::from_value_at(&m.data, 0.0).unwrap();
        let ours = Message::new(kind::STATS, r.to_value(false), NODE_ID).encode();
        assert_eq!(hex(&ours), hex(&bytes), "{name}");
    }
}

#[test]
fn integer_response_times_are_read() {
    let m = decode_fixture_lenient("stats_int_times.msgpack");
    let r = StatsReport::from_value_at(&m.data, 0.0).unwrap();
    let j = json_fixture("stats_int_times.json");
    check_entry(&r.report.stats[0], &j["stats"][0]);
    check_entry(&r.report.stats_total, &j["stats_total"]);
    let e = &r.report.stats[0];
    assert_eq!(
        (
            e.min_response_time,
            e.max_response_time,
            e.total_response_time
        ),
        (Some(3.0), 250.0, 253.0)
    );
    // The Locust report has no user_count-free shape issues: both keys present.
    assert_eq!(r.user_count, 7);
}

#[test]
fn master_merges_locust_reports_like_locust() {
    let m = decode_fixture_lenient("stats.msgpack");
    let r = StatsReport::from_value_at(&m.data, 0.0).unwrap();
    let mut master = RequestStats::new(true, 1795238500.0);
    master.merge_worker_report(&r.report);
    master.merge_worker_report(&r.report);
    assert_eq!(
        master.total.num_requests,
        2 * r.report.stats_total.num_requests
    );
    assert_eq!(master.total.start_time, 1795238500.0);
    assert_eq!(master.errors.len(), 3);
    assert!(master.errors.values().all(|e| e.occurrences == 4));
    let root = master.get("/", "GET").unwrap();
    // {0:2, 2:2, 4:2, 150:2, 1200:2, 59000:2}: 6 of 12 lie below 150.
    assert_eq!(root.get_response_time_percentile(0.5), 150);
    assert_eq!(root.get_response_time_percentile(1.0), 59000);
    // Python workers send no HDR data: the precise view is empty unless approximated.
    assert_eq!(root.precise_percentile(0.5), 0.0);
    let approx = approximate_hdr_from_buckets(root);
    assert_eq!(approx.len(), root.num_timed_requests());
}

#[test]
fn every_truncation_is_an_error() {
    // msgpack is prefix-free: no proper prefix of a value is a value.
    for (name, bytes) in all_fixtures() {
        assert!(decode_value(&bytes).is_ok(), "{name}");
        let message = name != "scalars.msgpack";
        assert_eq!(Message::decode(&bytes).is_ok(), message, "{name}");
        for cut in 0..bytes.len() {
            let r = decode_value(&bytes[..cut]);
            assert!(r.is_err(), "{name} cut at {cut} decoded: {r:?}");
            assert!(Message::decode(&bytes[..cut]).is_err());
        }
    }
}

/// Runs every payload reader on a value: none may panic.
fn read_everything(v: &Value) {
    let _ = Heartbeat::from_value(v);
    let _ = Spawn::from_value(v);
    let _ = SpawningComplete::from_value(v);
    let _ = spawning_complete_user_count(v);
    let _ = Ack::from_value(v);
    let _ = ClientReady::from_value(v);
    let _ = ExceptionReport::from_value(v);
    let _ = Logs::from_value(v);
    let _ = StatsReport::from_value_at(v, 0.0);
    let _ = entry_from_value(v, 0.0);
    let _ = error_from_value(v);
    let _ = special_object(v);
}

#[test]
fn random_bytes_never_panic() {
    for seed in 0..64u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..500 {
            let len = rng.usize(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if let Ok(m) = Message::decode(&bytes) {
                read_everything(&m.data);
            }
            if let Ok(v) = decode_value(&bytes) {
                read_everything(&v);
            }
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let fixtures = all_fixtures();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for (_, bytes) in &fixtures {
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                match rng.u8(..3) {
                    0 => b[i] = rng.u8(..),
                    1 => b[i] ^= 1 << rng.u8(..8),
                    _ => {
                        b.remove(i);
                        if b.is_empty() {
                            break;
                        }
                    }
                }
            }
            if let Ok(m) = Message::decode(&b) {
                read_everything(&m.data);
                // Whatever decoded re-encodes to something that decodes the same.
                let again = Message::decode(&m.encode()).unwrap();
                assert_eq!(again.encode(), m.encode());
            }
        }
    }
}

/// A random msgpack value (no NaN issues: compared by bytes).
fn random_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    let pick = if depth >= 4 {
        rng.u8(..8)
    } else {
        rng.u8(..10)
    };
    match pick {
        0 => Value::Nil,
        1 => Value::Boolean(rng.bool()),
        2 => Value::from(rng.u64(..) >> rng.u32(0..64)),
        3 => Value::from(-((rng.u64(..) >> rng.u32(1..64)) as i64) - 1),
        4 => Value::F64(f64::from_bits(rng.u64(..))),
        5 => Value::from(
            (0..rng.usize(0..40))
                .map(|_| rng.char('a'..='é'))
                .collect::<String>(),
        ),
        6 => Value::Binary((0..rng.usize(0..300)).map(|_| rng.u8(..)).collect()),
        7 => Value::Ext(
            rng.i8(..),
            (0..rng.usize(0..20)).map(|_| rng.u8(..)).collect(),
        ),
        8 => Value::Array(
            (0..rng.usize(0..20))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Map(
            (0..rng.usize(0..20))
                .map(|_| (random_value(rng, depth + 1), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

#[test]
fn random_values_round_trip() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let v = random_value(&mut rng, 0);
        let m = Message::new("x", v, "id");
        let bytes = m.encode();
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        read_everything(&back.data);
    }
}

#[test]
fn the_masters_fast_reader_agrees_on_every_fixture() {
    // Every real-Locust stats report and heartbeat is read fast, and as the reference reads
    // it; every other fixture is left to the reference.
    for (name, bytes) in all_fixtures() {
        let fast = fast::check::agree(&bytes);
        let hot = name.starts_with("stats") || name == "heartbeat_worker.msgpack";
        assert_eq!(fast, hot, "{name}");
    }
}
