//! Hopper's own messages for queue feeders shared by a cluster: a worker leases rows of a
//! feeder from its master, which hands each row out once across all workers.
//!
//! Locust's protocol lets peers add message types (reference §6.3: "custom"); these are
//! prefixed `hopper_` so they cannot collide with Locust's or a plugin's. A worker sends them
//! only to a master that acked with Hopper's marker ([`super::Ack::hopper`]); a Locust master
//! never sees them.
//!
//! * `hopper_feed_lease`, worker → master: `{"feeder": name, "count": n, "id": n}`;
//! * `hopper_feed_rows`, master → worker: `{"feeder": name, "id": n, "rows": [[str, …], …],
//!   "exhausted": bool, "error": str | nil}`. No rows and `exhausted` means the queue is
//!   empty for good; `error` says why the master could not serve the lease.

use rmpv::Value;

use super::fields::{describe, to_str, to_u64, MapView};
use super::WireError;

/// Worker → master: rows wanted.
pub const FEED_LEASE: &str = "hopper_feed_lease";
/// Master → worker: the rows leased.
pub const FEED_ROWS: &str = "hopper_feed_rows";

fn s(v: &str) -> Value {
    Value::from(v)
}

/// `hopper_feed_lease` data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLease {
    /// The feeder's name (the same program runs on master and workers).
    pub feeder: String,
    /// Rows wanted.
    pub count: u64,
    /// Chosen by the worker, echoed in the answer.
    pub id: u64,
}

impl FeedLease {
    /// `{"feeder", "count", "id"}`.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (s("feeder"), s(&self.feeder)),
            (s("count"), Value::from(self.count)),
            (s("id"), Value::from(self.id)),
        ])
    }

    /// Every key is required.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("hopper_feed_lease data", String::new(), v)?;
        let need = |key: &str| {
            m.get(key)
                .ok_or_else(|| m.error(key, "missing (a Hopper worker always sends it)"))
        };
        Ok(FeedLease {
            feeder: to_str(need("feeder")?)
                .map_err(|p| m.error("feeder", p))?
                .to_string(),
            count: to_u64(need("count")?).map_err(|p| m.error("count", p))?,
            id: to_u64(need("id")?).map_err(|p| m.error("id", p))?,
        })
    }
}

/// `hopper_feed_rows` data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRows {
    /// The feeder's name.
    pub feeder: String,
    /// The lease this answers.
    pub id: u64,
    /// The rows, each in the file's column order.
    pub rows: Vec<Vec<String>>,
    /// The master has no rows left for this feeder.
    pub exhausted: bool,
    /// Why the lease could not be served (then `rows` is empty).
    pub error: Option<String>,
}

impl FeedRows {
    /// `{"feeder", "id", "rows", "exhausted", "error"}`.
    pub fn to_value(&self) -> Value {
        let rows = self
            .rows
            .iter()
            .map(|r| Value::Array(r.iter().map(|f| s(f)).collect()))
            .collect();
        Value::Map(vec![
            (s("feeder"), s(&self.feeder)),
            (s("id"), Value::from(self.id)),
            (s("rows"), Value::Array(rows)),
            (s("exhausted"), Value::Boolean(self.exhausted)),
            (s("error"), self.error.as_deref().map_or(Value::Nil, s)),
        ])
    }

    /// `feeder`, `id`, `rows` and `exhausted` are required; `error` may be missing or nil.
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        let m = MapView::new("hopper_feed_rows data", String::new(), v)?;
        let need = |key: &str| {
            m.get(key)
                .ok_or_else(|| m.error(key, "missing (a Hopper master always sends it)"))
        };
        let rows = match need("rows")? {
            Value::Array(rows) => rows
                .iter()
                .enumerate()
                .map(|(i, row)| match row {
                    Value::Array(fields) => fields
                        .iter()
                        .map(|f| to_str(f).map(str::to_string))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|p| m.error(&format!("rows[{i}]"), p)),
                    other => Err(m.error(
                        &format!("rows[{i}]"),
                        format!("expected an array, got {}", describe(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(m.error(
                    "rows",
                    format!("expected an array, got {}", describe(other)),
                ))
            }
        };
        let exhausted = match need("exhausted")? {
            Value::Boolean(b) => *b,
            other => {
                return Err(m.error(
                    "exhausted",
                    format!("expected true or false, got {}", describe(other)),
                ))
            }
        };
        Ok(FeedRows {
            feeder: to_str(need("feeder")?)
                .map_err(|p| m.error("feeder", p))?
                .to_string(),
            id: to_u64(need("id")?).map_err(|p| m.error("id", p))?,
            rows,
            exhausted,
            error: m.opt("error", |v| to_str(v).map(str::to_string))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Message, MAX_FRAME_BYTES};
    use super::*;

    #[test]
    fn lease_round_trips() {
        let lease = FeedLease {
            feeder: "accounts".into(),
            count: 10,
            id: 7,
        };
        assert_eq!(FeedLease::from_value(&lease.to_value()), Ok(lease.clone()));
        let m = Message::new(FEED_LEASE, lease.to_value(), "host_0123");
        let back = Message::decode(&m.encode()).unwrap();
        assert_eq!(back.kind, "hopper_feed_lease");
        assert_eq!(FeedLease::from_value(&back.data), Ok(lease));
    }

    #[test]
    fn rows_round_trip() {
        let rows = FeedRows {
            feeder: "accounts".into(),
            id: 3,
            rows: vec![
                vec!["alice".into(), "s, \"1\"".into()],
                vec!["bob".into(), "".into()],
            ],
            exhausted: false,
            error: None,
        };
        assert_eq!(FeedRows::from_value(&rows.to_value()), Ok(rows.clone()));
        let failed = FeedRows {
            rows: Vec::new(),
            exhausted: true,
            error: Some("no such feeder".into()),
            ..rows
        };
        let bytes = Message::new(FEED_ROWS, failed.to_value(), "w").encode();
        assert!(bytes.len() < MAX_FRAME_BYTES);
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(FeedRows::from_value(&back.data), Ok(failed));
    }

    #[test]
    fn bad_shapes_are_named() {
        let err = |v: Value| FeedRows::from_value(&v).unwrap_err().to_string();
        assert_eq!(
            err(Value::Nil),
            "invalid hopper_feed_rows data: expected a map, got nil"
        );
        let with_rows = |rows: Value| {
            Value::Map(vec![
                (s("feeder"), s("f")),
                (s("id"), Value::from(1u64)),
                (s("rows"), rows),
                (s("exhausted"), Value::Boolean(false)),
            ])
        };
        assert_eq!(
            err(with_rows(Value::Array(vec![Value::Array(vec![
                Value::from(5u64)
            ])]))),
            "invalid hopper_feed_rows data at `rows[0]`: expected a string, got 5"
        );
        assert_eq!(
            err(with_rows(Value::Array(vec![Value::Nil]))),
            "invalid hopper_feed_rows data at `rows[0]`: expected an array, got nil"
        );
        assert_eq!(
            FeedLease::from_value(&Value::Map(vec![(s("feeder"), s("f"))]))
                .unwrap_err()
                .to_string(),
            "invalid hopper_feed_lease data at `count`: missing (a Hopper worker always sends it)"
        );
    }
}
