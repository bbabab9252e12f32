//! Custom report data between msgpack and JSON: what `report_to_master` listeners write and
//! `worker_report` listeners read are `serde_json` values, the wire carries msgpack.
//!
//! JSON is the common ground of Rust listeners and Locust's Python ones (whose dicts, lists,
//! strings and numbers msgpack carries unchanged). What JSON lacks is mapped plainly: binary
//! becomes an array of byte values, map keys that are not strings become their JSON text,
//! NaN and infinities and msgpack extensions become `null`. Messages are at most 1024 levels
//! deep (the decoder's bound), so the recursion here is bounded.

use rmpv::Value;
use serde_json::Value as Json;

/// A msgpack value as JSON.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil | Value::Ext(..) => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => {
            if let Some(u) = i.as_u64() {
                Json::from(u)
            } else {
                i.as_i64().map_or(Json::Null, Json::from)
            }
        }
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => Json::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_string,
        )),
        Value::Binary(b) => Json::Array(b.iter().map(|&x| Json::from(x)).collect()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        Some(s) => s.to_string(),
                        None => to_json(k).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// A JSON value as msgpack (integers stay integers, as Python's msgpack writes them).
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip() {
        let j = json!({"carts": 3, "neg": -2, "ratio": 0.25, "names": ["a", "b"], "none": null, "ok": true, "nested": {"x": {"y": [1]}}});
        assert_eq!(to_json(&from_json(&j)), j);
    }

    #[test]
    fn what_json_lacks_is_mapped_plainly() {
        let v = Value::Map(vec![
            (Value::from(1), Value::Binary(vec![1, 2])),
            (Value::from("nan"), Value::F64(f64::NAN)),
            (Value::from("ext"), Value::Ext(5, vec![0])),
        ]);
        assert_eq!(to_json(&v), json!({"1": [1, 2], "nan": null, "ext": null}));
    }
}
