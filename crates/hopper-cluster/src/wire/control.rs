//! The payloads of the control messages: connecting (`client_ready`, `ack`), liveness
//! (`heartbeat`), ramping (`spawn`, `spawning_complete`) and the worker's reports of task
//! exceptions and log lines.
//!
//! Each `to_value` writes the map Locust writes, keys in Locust's order; each `from_value`
//! reads what a Locust peer sends, and fails where a Locust peer would fail (a missing key
//! Locust indexes directly) with an error naming the field.

use std::collections::BTreeMap;

use rmpv::Value;

use super::fields::{describe, to_f64, to_str, to_u64, MapView};
use super::WireError;

fn s(v: &str) -> Value {
    Value::from(v)
}

fn class_counts(counts: &BTreeMap<String, u64>) -> Value {
    Value::Map(
        counts
            .iter()
            .map(|(k, &v)| (s(k), Value::from(v)))
            .collect(),
    )
}

/// A user-class count map `{class name: users}`.
fn read_class_counts(m: &MapView<'_>, key: &str) -> Result<BTreeMap<String, u64>, WireError> {
    m.counts(key, |k| to_str(k).map(str::to_string))
}

/// `heartbeat` data, worker → master (the master's reply carries nil).
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The worker's state: `ready`, `spawning` or `running`.
    pub state: String,
    /// Process CPU usage, percent of one core (psutil's `cpu_percent()`).
    pub current_cpu_usage: f64,
    /// Resident memory, bytes.
    pub current_memory_usage: u64,
}

impl Heartbeat {
    /// `{"state", "current_cpu_usage", "current_memory_usage"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (s("state"), s(&self.state)),
            (s("current_cpu_usage"), Value::F64(self.current_cpu_usage)),
            (
                s("current_memory_usage"),
                Value::from(self.current_memory_usage),
            ),
        ])
    }

    /// `state` and `current_cpu_usage` are required, as the Locust master indexes them;
    /// `current_memory_usage` is optional there (missing or nil reads as 0 here; a fractional
    /// number is truncated).
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("heartbeat data", String::new(), v)?;
        Ok(Heartbeat {
            state: m.conv("state", to_str)?.to_string(),
            current_cpu_usage: m.conv("current_cpu_usage", to_f64)?,
            current_memory_usage: m
                .opt("current_memory_usage", |v| {
                    to_f64(v).and_then(|f| {
                        (f >= 0.0 && f.is_finite())
                            .then_some(f as u64)
                            .ok_or_else(|| format!("expected a byte count, got {}", describe(v)))
                    })
                })?
                .unwrap_or(0),
        })
    }
}

/// `spawn` data, master → worker: the users this worker should run from now on.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    /// The master's wall time when it built the message; a worker drops a spawn whose
    /// timestamp is not later than the last one it applied.
    pub timestamp: f64,
    /// Absolute target count per user class, every class included (zeros too).
    pub user_classes_count: BTreeMap<String, u64>,
    /// The master's `--host`; `None` (nil) when unset. An empty string is kept: the worker
    /// then keeps each class's own host, as for nil.
    pub host: Option<String>,
    /// Seconds a stopping user may take to finish its task (nil reads as 0).
    pub stop_timeout: f64,
    /// The master's parsed options, `{dest: value}` (Locust's `vars(parsed_options)`), kept as
    /// sent; a Locust worker adopts the non-default and custom ones plus `expect_workers`,
    /// `tags` and `exclude_tags`.
    pub parsed_options: Value,
}

impl Spawn {
    /// `{"timestamp", "user_classes_count", "host", "stop_timeout", "parsed_options"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (s("timestamp"), Value::F64(self.timestamp)),
            (
                s("user_classes_count"),
                class_counts(&self.user_classes_count),
            ),
            (s("host"), self.host.as_deref().map_or(Value::Nil, s)),
            (s("stop_timeout"), Value::F64(self.stop_timeout)),
            (s("parsed_options"), self.parsed_options.clone()),
        ])
    }

    /// Every key is required (a Locust worker indexes each one). `host` may be nil,
    /// `stop_timeout` nil or false (both read as 0, as Locust's `or 0.0`), `parsed_options`
    /// must be a map.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("spawn data", String::new(), v)?;
        let parsed_options = m.req("parsed_options")?;
        MapView::new("spawn data", m.path("parsed_options"), parsed_options)?;
        Ok(Spawn {
            timestamp: m.conv("timestamp", to_f64)?,
            user_classes_count: read_class_counts(&m, "user_classes_count")?,
            host: m.conv("host", |v| match v {
                Value::Nil => Ok(None),
                v => to_str(v).map(|h| Some(h.to_string())),
            })?,
            stop_timeout: m.conv("stop_timeout", |v| match v {
                Value::Nil | Value::Boolean(false) => Ok(0.0),
                v => to_f64(v),
            })?,
            parsed_options: parsed_options.clone(),
        })
    }
}

/// `spawning_complete` data, worker → master: `{"user_classes_count": {...}, "user_count": n}`,
/// sent after applying each spawn. (The master's own `spawning_complete` to its workers
/// carries only the total: [`spawning_complete_for_worker`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawningComplete {
    /// The worker's users per class now.
    pub user_classes_count: BTreeMap<String, u64>,
    /// The worker's users now.
    pub user_count: u64,
}

impl SpawningComplete {
    /// `{"user_classes_count", "user_count"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (
                s("user_classes_count"),
                class_counts(&self.user_classes_count),
            ),
            (s("user_count"), Value::from(self.user_count)),
        ])
    }

    /// `user_classes_count` is required (the Locust master indexes it, and answers a message
    /// without it with `quit`); a missing `user_count` (which it never reads) is the sum of
    /// the class counts.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("spawning_complete data", String::new(), v)?;
        let user_classes_count = read_class_counts(&m, "user_classes_count")?;
        let sum = user_classes_count
            .values()
            .fold(0u64, |a, &b| a.saturating_add(b));
        Ok(SpawningComplete {
            user_count: m.or("user_count", sum, to_u64)?,
            user_classes_count,
        })
    }
}

/// The master's `spawning_complete` data to each worker once the ramp is done:
/// `{"user_count": total}` (the cluster's user count).
pub fn spawning_complete_for_worker(user_count: u64) -> Value {
    Value::Map(vec![(s("user_count"), Value::from(user_count))])
}

/// Reads the master's `spawning_complete` data on a worker: its `user_count` (required, as a
/// Locust worker indexes it).
pub fn spawning_complete_user_count(v: &Value) -> Result<u64, WireError> {
    MapView::new("spawning_complete data", String::new(), v)?.conv("user_count", to_u64)
}

/// `ack` data, master → worker: the answer to `client_ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The worker's stable 0-based index on this master.
    pub index: u64,
    /// Hopper extension: a Hopper master's version. Locust workers only look for `"index"`
    /// (`if msg.data is not None and "index" in msg.data`), so the extra key is harmless to
    /// them; a Hopper worker that sees it knows it may add its HDR histograms to stats reports
    /// ([`super::StatsReport::to_value`]).
    pub hopper: Option<String>,
}

impl Ack {
    /// `{"index": n}`, plus `"hopper": version` from a Hopper master.
    pub fn to_value(&self) -> Value {
        let mut pairs = vec![(s("index"), Value::from(self.index))];
        if let Some(v) = &self.hopper {
            pairs.push((s("hopper"), s(v)));
        }
        Value::Map(pairs)
    }

    /// `index` is required: Locust masters have sent it since 2.10.3 (older ones sent nil,
    /// which a Locust worker tolerates but Hopper does not support). `hopper` may be missing
    /// or nil.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("ack data", String::new(), v)?;
        Ok(Ack {
            index: m.conv("index", to_u64)?,
            hopper: m.opt("hopper", |v| to_str(v).map(str::to_string))?,
        })
    }
}

/// `client_ready` data, worker → master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientReady {
    /// The worker's Locust version, e.g. `"2.47.0"`. A Hopper worker sends the Locust version
    /// it is compatible with.
    Version(String),
    /// `-1`: the worker asks the master to skip the version check (third-party workers).
    SkipVersionCheck,
}

/// How a worker's `client_ready` version compares with the master's (Locust's three cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// Equal, or `-1`: nothing to say.
    Same,
    /// Same first four characters (e.g. `2.47`): Locust logs it at DEBUG.
    SamePrefix,
    /// Anything else: Locust logs a WARNING but accepts the worker all the same.
    Different,
}

impl ClientReady {
    /// The version string, or the integer `-1`.
    pub fn to_value(&self) -> Value {
        match self {
            ClientReady::Version(v) => s(v),
            ClientReady::SkipVersionCheck => Value::from(-1i64),
        }
    }

    /// A non-empty string, or `-1` (int or float, as Python's `== -1`). Falsy data (nil, `""`,
    /// `0`, false, empty containers) is what Locust rejects as "an old (pre 2.0) worker" and
    /// answers with no ack; other data would crash Locust's check; both are errors here.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        if let Some(version) = v.as_str().filter(|s| !s.is_empty()) {
            return Ok(ClientReady::Version(version.to_string()));
        }
        if v.as_f64() == Some(-1.0) {
            return Ok(ClientReady::SkipVersionCheck);
        }
        let falsy = match v {
            Value::Nil => true,
            Value::Boolean(b) => !b,
            Value::Integer(_) | Value::F32(_) | Value::F64(_) => v.as_f64() == Some(0.0),
            Value::String(s) => s.as_bytes().is_empty(),
            Value::Binary(b) => b.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Map(m) => m.is_empty(),
            Value::Ext(..) => false,
        };
        let problem = if falsy {
            format!(
                "empty version ({}): Locust rejects such a worker as older than 2.0",
                describe(v)
            )
        } else {
            format!("expected a version string or -1, got {}", describe(v))
        };
        Err(WireError::payload("client_ready data", "", problem))
    }

    /// Compares with the master's version as Locust does (first four characters for the
    /// "same minor" case).
    pub fn compare(&self, master_version: &str) -> VersionMatch {
        match self {
            ClientReady::SkipVersionCheck => VersionMatch::Same,
            ClientReady::Version(v) if v == master_version => VersionMatch::Same,
            ClientReady::Version(v) if v.chars().take(4).eq(master_version.chars().take(4)) => {
                VersionMatch::SamePrefix
            }
            ClientReady::Version(_) => VersionMatch::Different,
        }
    }
}

/// The Locust version whose protocol Hopper speaks; a Hopper master compares workers'
/// `client_ready` versions with it, as a Locust master compares them with its own.
pub const PROTOCOL_VERSION: &str = "2.47.0";

/// What a Hopper worker sends in `client_ready`: [`PROTOCOL_VERSION`] with a local-version
/// suffix naming Hopper, e.g. `2.47.0+hopper.0.1.0`. A Locust 2.47 master sees the same first
/// four characters and only logs "different patch version" at DEBUG; a Hopper master
/// recognises its own kind with [`is_hopper_version`].
pub const WORKER_VERSION: &str = concat!("2.47.0+hopper.", env!("CARGO_PKG_VERSION"));

/// Whether a `client_ready` version comes from a Hopper worker ([`WORKER_VERSION`]'s form).
pub fn is_hopper_version(version: &str) -> bool {
    version
        .split_once('+')
        .is_some_and(|(_, local)| local == "hopper" || local.starts_with("hopper."))
}

/// `client_ready` data as the master needs it: `Some(version)`, or `None` for `-1` (skip the
/// version check). Errors as [`ClientReady::from_value`].
pub fn client_ready_version(v: &Value) -> Result<Option<String>, WireError> {
    Ok(match ClientReady::from_value(v)? {
        ClientReady::Version(version) => Some(version),
        ClientReady::SkipVersionCheck => None,
    })
}

/// `exception` data, worker → master: a task raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionReport {
    /// The message (Python `str(exc)`).
    pub msg: String,
    /// The traceback frames (Python `traceback.format_tb`).
    pub traceback: String,
}

impl ExceptionReport {
    /// `{"msg", "traceback"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (s("msg"), s(&self.msg)),
            (s("traceback"), s(&self.traceback)),
        ])
    }

    /// Both keys required, as strings.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("exception data", String::new(), v)?;
        Ok(ExceptionReport {
            msg: m.conv("msg", to_str)?.to_string(),
            traceback: m.conv("traceback", to_str)?.to_string(),
        })
    }
}

/// `logs` data, worker → master: the worker's whole log buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    /// The sending worker's client id.
    pub worker_id: String,
    /// Formatted log lines, oldest first.
    pub logs: Vec<String>,
}

impl Logs {
    /// `{"worker_id", "logs"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (s("worker_id"), s(&self.worker_id)),
            (
                s("logs"),
                Value::Array(self.logs.iter().map(|l| s(l)).collect()),
            ),
        ])
    }

    /// `worker_id` must be a non-empty string (Locust ignores the message otherwise);
    /// a missing `logs` reads as no lines, as Locust's `.get("logs", [])`.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("logs data", String::new(), v)?;
        let worker_id = m.conv("worker_id", to_str)?;
        if worker_id.is_empty() {
            return Err(m.error("worker_id", "empty (Locust ignores such a message)"));
        }
        let logs = m.or("logs", Vec::new(), |v| match v {
            Value::Array(lines) => lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    to_str(l)
                        .map(str::to_string)
                        .map_err(|p| format!("line {i}: {p}"))
                })
                .collect(),
            other => Err(format!(
                "expected an array of lines, got {}",
                describe(other)
            )),
        })?;
        Ok(Logs {
            worker_id: worker_id.to_string(),
            logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    #[test]
    fn heartbeat_round_trip_and_leniency() {
        let h = Heartbeat {
            state: "running".into(),
            current_cpu_usage: 12.5,
            current_memory_usage: 123_456_789,
        };
        assert_eq!(Heartbeat::from_value(&h.to_value()), Ok(h));
        // An int cpu figure, no memory figure.
        let v = map(vec![
            ("state", s("ready")),
            ("current_cpu_usage", Value::from(3u64)),
        ]);
        let h = Heartbeat::from_value(&v).unwrap();
        assert_eq!((h.current_cpu_usage, h.current_memory_usage), (3.0, 0));
        let v = map(vec![("state", s("ready"))]);
        assert_eq!(
            Heartbeat::from_value(&v).unwrap_err().to_string(),
            "invalid heartbeat data at `current_cpu_usage`: missing (Locust always sends it)"
        );
        assert_eq!(
            Heartbeat::from_value(&Value::Nil).unwrap_err().to_string(),
            "invalid heartbeat data: expected a map, got nil"
        );
    }

    #[test]
    fn spawn_round_trip_and_nils() {
        let sp = Spawn {
            timestamp: 1795238526.5,
            user_classes_count: [("A".to_string(), 2), ("B".to_string(), 0)].into(),
            host: None,
            stop_timeout: 0.0,
            parsed_options: map(vec![("tags", Value::Array(vec![s("x")]))]),
        };
        assert_eq!(Spawn::from_value(&sp.to_value()).as_ref(), Ok(&sp));
        let v = map(vec![
            ("timestamp", Value::from(5u64)),
            ("user_classes_count", map(vec![])),
            ("host", s("http://x")),
            ("stop_timeout", Value::Nil),
            ("parsed_options", map(vec![])),
        ]);
        let sp = Spawn::from_value(&v).unwrap();
        assert_eq!((sp.timestamp, sp.stop_timeout), (5.0, 0.0));
        assert_eq!(sp.host.as_deref(), Some("http://x"));
        let v = map(vec![
            ("timestamp", Value::from(5u64)),
            ("user_classes_count", map(vec![("A", Value::from(-1i64))])),
            ("host", Value::Nil),
            ("stop_timeout", Value::Nil),
            ("parsed_options", map(vec![])),
        ]);
        assert_eq!(
            Spawn::from_value(&v).unwrap_err().to_string(),
            "invalid spawn data at `user_classes_count`: the value of \"A\": expected a non-negative integer, got -1"
        );
    }

    #[test]
    fn spawning_complete_both_ways() {
        let w = SpawningComplete {
            user_classes_count: [("A".to_string(), 5), ("B".to_string(), 2)].into(),
            user_count: 7,
        };
        assert_eq!(SpawningComplete::from_value(&w.to_value()).as_ref(), Ok(&w));
        let v = map(vec![(
            "user_classes_count",
            map(vec![("A", Value::from(3u64))]),
        )]);
        assert_eq!(SpawningComplete::from_value(&v).unwrap().user_count, 3);
        assert_eq!(
            SpawningComplete::from_value(&map(vec![("user_count", Value::from(1u64))]))
                .unwrap_err()
                .to_string(),
            "invalid spawning_complete data at `user_classes_count`: missing (Locust always sends it)"
        );
        let m = spawning_complete_for_worker(7);
        assert_eq!(spawning_complete_user_count(&m), Ok(7));
        assert!(spawning_complete_user_count(&Value::Nil).is_err());
    }

    #[test]
    fn ack_with_and_without_hopper() {
        let a = Ack {
            index: 3,
            hopper: Some("0.1.0".into()),
        };
        assert_eq!(Ack::from_value(&a.to_value()).as_ref(), Ok(&a));
        let plain = map(vec![("index", Value::from(0u64))]);
        assert_eq!(
            Ack::from_value(&plain),
            Ok(Ack {
                index: 0,
                hopper: None
            })
        );
        assert_eq!(
            Ack::from_value(&Value::Nil).unwrap_err().to_string(),
            "invalid ack data: expected a map, got nil"
        );
    }

    #[test]
    fn client_ready_versions() {
        let v = ClientReady::from_value(&s("2.47.0")).unwrap();
        assert_eq!(v, ClientReady::Version("2.47.0".into()));
        assert_eq!(v.compare("2.47.0"), VersionMatch::Same);
        assert_eq!(v.compare("2.47.1"), VersionMatch::SamePrefix);
        assert_eq!(v.compare("2.4"), VersionMatch::Different);
        assert_eq!(
            ClientReady::from_value(&Value::from(-1i64)),
            Ok(ClientReady::SkipVersionCheck)
        );
        assert_eq!(
            ClientReady::from_value(&Value::F64(-1.0)),
            Ok(ClientReady::SkipVersionCheck)
        );
        assert_eq!(
            ClientReady::SkipVersionCheck.compare("x"),
            VersionMatch::Same
        );
        for falsy in [Value::Nil, s(""), Value::from(0u64), Value::Boolean(false)] {
            let e = ClientReady::from_value(&falsy).unwrap_err().to_string();
            assert!(e.contains("older than 2.0"), "{e}");
        }
        assert_eq!(
            client_ready_version(&s("2.47.0")),
            Ok(Some("2.47.0".into()))
        );
        assert_eq!(client_ready_version(&Value::from(-1i64)), Ok(None));
        assert!(WORKER_VERSION.starts_with(PROTOCOL_VERSION));
        assert!(is_hopper_version(WORKER_VERSION));
        assert_eq!(
            ClientReady::Version(WORKER_VERSION.into()).compare(PROTOCOL_VERSION),
            VersionMatch::SamePrefix
        );
        assert!(!is_hopper_version("2.47.0"));
        assert!(!is_hopper_version("2.47.0+hopperish"));
        assert_eq!(
            ClientReady::from_value(&Value::from(5u64))
                .unwrap_err()
                .to_string(),
            "invalid client_ready data: expected a version string or -1, got 5"
        );
    }

    #[test]
    fn exception_and_logs() {
        let e = ExceptionReport {
            msg: "boom".into(),
            traceback: "  File \"x\", line 1\n".into(),
        };
        assert_eq!(ExceptionReport::from_value(&e.to_value()).as_ref(), Ok(&e));
        let l = Logs {
            worker_id: "w_1".into(),
            logs: vec!["a".into(), "b".into()],
        };
        assert_eq!(Logs::from_value(&l.to_value()).as_ref(), Ok(&l));
        let v = map(vec![("worker_id", s("w_1"))]);
        assert_eq!(Logs::from_value(&v).unwrap().logs, Vec::<String>::new());
        let v = map(vec![
            ("worker_id", s("w_1")),
            ("logs", Value::Array(vec![Value::Nil])),
        ]);
        assert_eq!(
            Logs::from_value(&v).unwrap_err().to_string(),
            "invalid logs data at `logs`: line 0: expected a string, got nil"
        );
        assert!(Logs::from_value(&map(vec![("worker_id", s(""))])).is_err());
    }
}
