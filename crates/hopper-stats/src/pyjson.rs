//! JSON text exactly as Python's `json.dumps` writes it, for the outputs Locust produces with it.
//!
//! `serde_json`'s own writer differs from Python's in ways a byte comparison sees: floats (`1e-05`
//! vs `1e-5`), non-ASCII text (Python escapes it as `\u00e9` by default), and the separators
//! around items and keys. Locust's three JSON producers all use `json.dumps` underneath:
//!
//! * `--json` / `--json-file`: `json.dumps(obj, indent=4)`, keys in insertion order
//!   ([`dumps`] with `Some(4)`, `false`);
//! * the web API: Flask's `jsonify`, which Locust's web UI runs in debug mode, so the body is
//!   indented by 2 with sorted keys and ends in a newline ([`flask_jsonify`]);
//! * the HTML report: Jinja's `tojson` filter, one line with sorted keys and `<`, `>`, `&`, `'`
//!   escaped for a `<script>` tag ([`jinja_tojson`]).
//!
//! Values carry Python's int/float distinction through `serde_json::Number` (an `f64` number is
//! a Python float and prints with a decimal point).

use serde_json::{Map, Value};

use crate::pyfmt::py_float;

/// `json.dumps(value, indent=indent, sort_keys=sort_keys)` with Python's default separators
/// (`", "` and `": "` on one line; `","` and `": "` when indented) and `ensure_ascii=True`.
pub fn dumps(value: &Value, indent: Option<usize>, sort_keys: bool) -> String {
    let mut out = String::new();
    let item_sep = if indent.is_some() { "," } else { ", " };
    write_value(&mut out, value, indent, item_sep, sort_keys, 0);
    out
}

/// The body of a Locust web API reply: Flask's `jsonify` in debug mode (Locust's `WebUI` sets
/// `app.debug = True`), i.e. `json.dumps(value, indent=2, sort_keys=True)` plus a newline.
pub fn flask_jsonify(value: &Value) -> String {
    let mut out = dumps(value, Some(2), true);
    out.push('\n');
    out
}

/// Jinja's `tojson` filter, as the HTML report's `window.templateArgs = …` line uses it:
/// `json.dumps(value, sort_keys=True)` with `<`, `>`, `&` and `'` written as `\u003c`-style
/// escapes so the text cannot close the `<script>` tag.
pub fn jinja_tojson(value: &Value) -> String {
    dumps(value, None, true)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027")
}

/// Sorts every object's keys, at every depth (what `sort_keys=True` does while writing), so a
/// value handed to another JSON writer keeps Flask's and Jinja's key order.
pub fn sort_keys_deep(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut v) in entries {
                sort_keys_deep(&mut v);
                map.insert(k, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys_deep),
        _ => {}
    }
}

fn newline(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * level));
    }
}

fn write_value(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    item_sep: &str,
    sort_keys: bool,
    level: usize,
) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&py_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, indent, level + 1);
                write_value(out, item, indent, item_sep, sort_keys, level + 1);
            }
            newline(out, indent, level);
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, indent, item_sep, sort_keys, level),
    }
}

fn write_object(
    out: &mut String,
    map: &Map<String, Value>,
    indent: Option<usize>,
    item_sep: &str,
    sort_keys: bool,
    level: usize,
) {
    if map.is_empty() {
        out.push_str("{}");
        return;
    }
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if sort_keys {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(item_sep);
        }
        newline(out, indent, level + 1);
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v, indent, item_sep, sort_keys, level + 1);
    }
    newline(out, indent, level);
    out.push('}');
}

/// A string as `json.dumps` writes it with `ensure_ascii=True`: printable ASCII as is, the
/// usual short escapes, everything else as lowercase `\uXXXX` (UTF-16 surrogate pairs above
/// U+FFFF).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_like_python() {
        // json.dumps([1, 2.0, 1e-05, 1e16, 0.1, None, True, "x"])
        let v = json!([1, 2.0, 1e-05, 1e16, 0.1, null, true, "x"]);
        assert_eq!(
            dumps(&v, None, false),
            "[1, 2.0, 1e-05, 1e+16, 0.1, null, true, \"x\"]"
        );
        assert_eq!(dumps(&json!(u64::MAX), None, false), "18446744073709551615");
        assert_eq!(dumps(&json!(-3), None, false), "-3");
    }

    #[test]
    fn strings_ensure_ascii() {
        // json.dumps("a\"\\\n\r\t\b\f\x01\x7f é 😀 <&'>")
        let v = json!("a\"\\\n\r\t\u{8}\u{c}\u{1}\u{7f} é 😀 <&'>");
        assert_eq!(
            dumps(&v, None, false),
            r#""a\"\\\n\r\t\b\f\u0001\u007f \u00e9 \ud83d\ude00 <&'>""#
        );
        assert_eq!(
            jinja_tojson(&v),
            r#""a\"\\\n\r\t\b\f\u0001\u007f \u00e9 \ud83d\ude00 \u003c\u0026\u0027\u003e""#
        );
    }

    #[test]
    fn indent_and_sorting() {
        let v = json!({"b": [1, {}], "a": {"y": [], "x": 1.5}});
        assert_eq!(
            dumps(&v, Some(2), false),
            "{\n  \"b\": [\n    1,\n    {}\n  ],\n  \"a\": {\n    \"y\": [],\n    \"x\": 1.5\n  }\n}"
        );
        assert_eq!(
            dumps(&v, None, true),
            "{\"a\": {\"x\": 1.5, \"y\": []}, \"b\": [1, {}]}"
        );
        assert_eq!(
            flask_jsonify(&json!({"z": 0, "a": null})),
            "{\n  \"a\": null,\n  \"z\": 0\n}\n"
        );
        let mut w = v.clone();
        sort_keys_deep(&mut w);
        assert_eq!(dumps(&w, None, false), dumps(&v, None, true));
    }
}
