//! Reading typed fields out of decoded msgpack values, as leniently as Locust's Python does
//! and no more: an integer where a float is expected (and an integral float where an integer
//! is), the last of duplicate map keys (a Python dict keeps the last), nil only where the
//! caller allows it. Every failure names the payload and the path inside it.

use std::collections::BTreeMap;

use rmpv::Value;

use super::WireError;

/// A short description of a value for error messages: scalars as they are, containers by size.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::F32(f) => format!("the float {f}"),
        Value::F64(f) => format!("the float {f}"),
        Value::String(s) => match s.as_str() {
            Some(s) if s.chars().count() > 40 => {
                format!("{:?}…", s.chars().take(40).collect::<String>())
            }
            Some(s) => format!("{s:?}"),
            None => "a string that is not UTF-8".into(),
        },
        Value::Binary(b) => format!("binary data of {}", plural(b.len(), "byte", "bytes")),
        Value::Array(a) => format!("an array of {}", plural(a.len(), "item", "items")),
        Value::Map(m) => format!("a map of {}", plural(m.len(), "entry", "entries")),
        Value::Ext(t, _) => format!("a msgpack extension value of type {t}"),
    }
}

/// `"1 item"`, `"2 items"`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A non-negative integer (or an integral float that fits).
pub(crate) fn to_u64(v: &Value) -> Result<u64, String> {
    let ok = match v {
        Value::Integer(i) => i.as_u64(),
        Value::F32(_) | Value::F64(_) => float_to_int(v).and_then(|f| {
            // 2^64 itself is the first float out of range.
            (0.0..18_446_744_073_709_551_616.0)
                .contains(&f)
                .then_some(f as u64)
        }),
        _ => None,
    };
    ok.ok_or_else(|| format!("expected a non-negative integer, got {}", describe(v)))
}

/// An integer that fits `i64` (or an integral float that does).
pub(crate) fn to_i64(v: &Value) -> Result<i64, String> {
    let ok = match v {
        Value::Integer(i) => i.as_i64(),
        Value::F32(_) | Value::F64(_) => float_to_int(v).and_then(|f| {
            (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
                .contains(&f)
                .then_some(f as i64)
        }),
        _ => None,
    };
    ok.ok_or_else(|| format!("expected an integer, got {}", describe(v)))
}

/// The float of an F32/F64 when it is integral.
fn float_to_int(v: &Value) -> Option<f64> {
    let f = v.as_f64()?;
    (f.is_finite() && f.fract() == 0.0).then_some(f)
}

/// Any number, as a float.
pub(crate) fn to_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => v.as_f64(),
        _ => None,
    }
    .ok_or_else(|| format!("expected a number, got {}", describe(v)))
}

/// A string.
pub(crate) fn to_str(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected a string, got {}", describe(v)))
}

/// `key` appended to the path `at`.
pub(crate) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// A map being read: where it is, and its entries.
pub(crate) struct MapView<'a> {
    what: &'static str,
    at: String,
    pairs: &'a [(Value, Value)],
}

impl<'a> MapView<'a> {
    /// `v` as a map, or an error saying what it was instead.
    pub(crate) fn new(what: &'static str, at: String, v: &'a Value) -> Result<Self, WireError> {
        match v {
            Value::Map(pairs) => Ok(MapView { what, at, pairs }),
            other => Err(WireError::payload(
                what,
                at,
                format!("expected a map, got {}", describe(other)),
            )),
        }
    }

    /// The entries, in order.
    pub(crate) fn pairs(&self) -> &'a [(Value, Value)] {
        self.pairs
    }

    /// The path of `key` inside this map.
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.at, key)
    }

    /// An error about `key`.
    pub(crate) fn error(&self, key: &str, problem: impl Into<String>) -> WireError {
        WireError::payload(self.what, self.path(key), problem)
    }

    /// The value under the string key `key` (the last one, if repeated).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value under `key`, which must be there.
    pub(crate) fn req(&self, key: &str) -> Result<&'a Value, WireError> {
        self.get(key)
            .ok_or_else(|| self.error(key, "missing (Locust always sends it)"))
    }

    /// Converts the value under `key` (which must be there).
    pub(crate) fn conv<T>(
        &self,
        key: &str,
        f: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Result<T, WireError> {
        f(self.req(key)?).map_err(|p| self.error(key, p))
    }

    /// Converts the value under `key`; `None` when missing or nil.
    pub(crate) fn opt<T>(
        &self,
        key: &str,
        f: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Result<Option<T>, WireError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(v) => f(v).map(Some).map_err(|p| self.error(key, p)),
        }
    }

    /// Converts the value under `key`; `default` when missing (nil is an error).
    pub(crate) fn or<T>(
        &self,
        key: &str,
        default: T,
        f: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Result<T, WireError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => f(v).map_err(|p| self.error(key, p)),
        }
    }

    /// A nested map under `key` (which must be there).
    pub(crate) fn map(&self, key: &str) -> Result<MapView<'a>, WireError> {
        MapView::new(self.what, self.path(key), self.req(key)?)
    }

    /// The map under `key` as `{K: count}`, converting keys with `key_of`. A repeated key keeps
    /// its last count, as a Python dict does.
    pub(crate) fn counts<K: Ord>(
        &self,
        key: &str,
        key_of: impl Fn(&'a Value) -> Result<K, String>,
    ) -> Result<BTreeMap<K, u64>, WireError> {
        let m = self.map(key)?;
        m.counts_here(key_of)
    }

    /// This map as `{K: count}` (see [`MapView::counts`]).
    pub(crate) fn counts_here<K: Ord>(
        &self,
        key_of: impl Fn(&'a Value) -> Result<K, String>,
    ) -> Result<BTreeMap<K, u64>, WireError> {
        let mut out = BTreeMap::new();
        for (k, v) in self.pairs {
            let kk = key_of(k).map_err(|p| {
                WireError::payload(self.what, self.at.clone(), format!("a key: {p}"))
            })?;
            let n = to_u64(v).map_err(|p| {
                WireError::payload(
                    self.what,
                    self.at.clone(),
                    format!("the value of {}: {p}", describe(k)),
                )
            })?;
            out.insert(kk, n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_lenient_like_python() {
        assert_eq!(to_u64(&Value::from(5u64)), Ok(5));
        assert_eq!(to_u64(&Value::F64(5.0)), Ok(5));
        assert_eq!(
            to_u64(&Value::F64(5.5)),
            Err("expected a non-negative integer, got the float 5.5".into())
        );
        assert_eq!(
            to_u64(&Value::from(-3i64)),
            Err("expected a non-negative integer, got -3".into())
        );
        assert!(to_u64(&Value::F64(f64::NAN)).is_err());
        assert!(to_u64(&Value::F64(1e20)).is_err());
        assert!(to_u64(&Value::Boolean(true)).is_err());
        assert_eq!(to_i64(&Value::from(-3i64)), Ok(-3));
        assert!(to_i64(&Value::from(u64::MAX)).is_err());
        assert_eq!(to_f64(&Value::from(3u64)), Ok(3.0));
        assert_eq!(to_f64(&Value::F32(0.5)), Ok(0.5));
        assert_eq!(
            to_f64(&Value::from("3")),
            Err("expected a number, got \"3\"".into())
        );
    }

    #[test]
    fn maps_keep_the_last_duplicate() {
        let v = Value::Map(vec![
            (Value::from("a"), Value::from(1u64)),
            (Value::from("a"), Value::from(2u64)),
        ]);
        let m = MapView::new("test data", String::new(), &v).unwrap();
        assert_eq!(m.conv("a", to_u64), Ok(2));
        assert_eq!(
            m.conv("b", to_u64).unwrap_err().to_string(),
            "invalid test data at `b`: missing (Locust always sends it)"
        );
    }

    #[test]
    fn descriptions_are_short() {
        assert_eq!(
            describe(&Value::from("x".repeat(50))),
            format!("{:?}…", "x".repeat(40))
        );
        assert_eq!(
            describe(&Value::Array(vec![Value::Nil])),
            "an array of 1 item"
        );
    }
}
