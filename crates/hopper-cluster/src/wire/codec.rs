//! msgpack bytes ⇄ [`rmpv::Value`], with Python msgpack's conventions (what Locust's
//! `msgpack.dumps(..., default=encode)` writes and `msgpack.loads(..., raw=False,
//! strict_map_key=False)` reads).
//!
//! Writing: strings as msgpack str, bytes as bin, every float as float64 (`0xcb`), integers in
//! their smallest encoding (unsigned forms for non-negative values, as Python does), arrays and
//! maps in the smallest header, map keys of any type in the order given.
//!
//! Reading: one value filling the whole input (trailing bytes are an error, as Python's
//! `ExtraData`), strings must be UTF-8 (Python raises `UnicodeDecodeError`), nesting at most
//! [`MAX_DEPTH`] arrays and maps (Python's `StackError`), extension types kept as
//! [`Value::Ext`]. Every declared length is checked against the bytes that remain before
//! anything is allocated (for containers, together with the elements enclosing containers
//! still expect), at most [`MAX_VALUES`] values are read, and neither reading nor writing
//! recurses: a forged length cannot make the reader allocate more than the input can fill, and
//! no input can make it panic.
//!
//! Locust's special maps (`{"__datetime__": true, "as_str": "20250102T03:04:05.678901"}` for a
//! datetime, `{"__ObjectId__": true, "as_str": hex}` for a BSON ObjectId) are kept as the maps
//! they are, so a message passed on is re-encoded byte for byte as Locust would re-encode the
//! object; [`special_object`] recognises them.

use rmpv::Value;

use super::{WireError, MAX_DEPTH, MAX_VALUES};

/// Decodes one msgpack value that fills all of `bytes`.
///
/// Nesting and the number of values are bounded ([`MAX_DEPTH`], [`MAX_VALUES`]); unlike
/// [`super::Message::decode`] this does not check the frame size limit.
pub fn decode_value(bytes: &[u8]) -> Result<Value, WireError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        outer: 0,
        values: 0,
    };
    let v = r.value()?;
    if r.pos != bytes.len() {
        return Err(r.error(
            r.pos,
            format!(
                "{} left over after the end of the value",
                byte_count(bytes.len() - r.pos)
            ),
        ));
    }
    Ok(v)
}

/// Decodes the one msgpack value at the start of `bytes`, as part of a larger value being read
/// elsewhere: `outer` containers are already open around it (they count towards
/// [`MAX_DEPTH`]) and `values` values were already read (updated; they count towards
/// [`MAX_VALUES`]). Returns the value and the bytes it took.
pub(crate) fn decode_prefix(
    bytes: &[u8],
    outer: usize,
    values: &mut usize,
) -> Result<(Value, usize), WireError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        outer,
        values: *values,
    };
    let v = r.value()?;
    *values = r.values;
    Ok((v, r.pos))
}

/// Appends the msgpack encoding of `v` to `out`.
///
/// `F32` values are written as float64, as Python has no other float. A string or binary over
/// 4 GiB, or a container of over 4 G elements, cannot be represented in msgpack; such sizes
/// are written as `u32::MAX` (Hopper never builds such values; received ones are far smaller).
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    // An explicit stack rather than recursion: no value nests deep enough to overflow a
    // thread's stack, whatever built it.
    let mut pending: Vec<&Value> = vec![v];
    while let Some(v) = pending.pop() {
        match v {
            Value::Array(items) => {
                write_container_len(items.len(), out, 0x90, 0xdc, 0xdd);
                pending.extend(items.iter().rev());
            }
            Value::Map(pairs) => {
                write_container_len(pairs.len(), out, 0x80, 0xde, 0xdf);
                for (k, v) in pairs.iter().rev() {
                    pending.push(v);
                    pending.push(k);
                }
            }
            scalar => encode_scalar(scalar, out),
        }
    }
}

/// Everything but arrays and maps.
fn encode_scalar(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil | Value::Array(_) | Value::Map(_) => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => write_uint(u, out),
            (None, Some(n)) => write_nint(n, out),
            // An Integer is always one of the two.
            (None, None) => out.push(0xc0),
        },
        Value::F32(f) => write_f64(f64::from(*f), out),
        Value::F64(f) => write_f64(*f, out),
        Value::String(s) => {
            let bytes = s.as_bytes();
            write_len(bytes.len(), out, Some(0xa0), 0xd9, 0xda, 0xdb);
            out.extend_from_slice(bytes);
        }
        Value::Binary(b) => {
            write_len(b.len(), out, None, 0xc4, 0xc5, 0xc6);
            out.extend_from_slice(b);
        }
        Value::Ext(ty, data) => {
            let fixed = match data.len() {
                1 => Some(0xd4),
                2 => Some(0xd5),
                4 => Some(0xd6),
                8 => Some(0xd7),
                16 => Some(0xd8),
                _ => None,
            };
            match fixed {
                Some(marker) => out.push(marker),
                None => write_len(data.len(), out, None, 0xc7, 0xc8, 0xc9),
            }
            out.push(*ty as u8);
            out.extend_from_slice(data);
        }
    }
}

fn write_uint(u: u64, out: &mut Vec<u8>) {
    if u < 0x80 {
        out.push(u as u8);
    } else if u <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xcc, u as u8]);
    } else if u <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(u as u16).to_be_bytes());
    } else if u <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(u as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// A negative integer in its smallest signed form.
fn write_nint(n: i64, out: &mut Vec<u8>) {
    if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_f64(f: f64, out: &mut Vec<u8>) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_be_bytes());
}

/// A str/bin/ext length: the fix form (str only, under 32), then 8-, 16- and 32-bit forms.
fn write_len(len: usize, out: &mut Vec<u8>, fix: Option<u8>, m8: u8, m16: u8, m32: u8) {
    match fix {
        Some(fix) if len < 32 => out.push(fix | len as u8),
        _ if len <= usize::from(u8::MAX) => out.extend_from_slice(&[m8, len as u8]),
        _ if len <= usize::from(u16::MAX) => {
            out.push(m16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m32);
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

/// An array/map length: the fix form under 16, then 16- and 32-bit forms.
fn write_container_len(len: usize, out: &mut Vec<u8>, fix: u8, m16: u8, m32: u8) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// `"1 byte"`, `"3 bytes"`.
fn byte_count(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// What one marker starts.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

/// A container being read: its elements so far and its declared size (a map also holds a
/// key waiting for its value).
enum Partial {
    Array(Vec<Value>, usize),
    Map(Vec<(Value, Value)>, Option<Value>, usize),
}

/// A cursor over the input; every read checks the bytes left.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Containers open around the value being read (see [`decode_prefix`]).
    outer: usize,
    /// Values read so far.
    values: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, offset: usize, problem: impl Into<String>) -> WireError {
        WireError::Msgpack {
            offset,
            problem: problem.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, for `what` (named in the error when the input is shorter).
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(self.error(
                self.pos,
                format!(
                    "truncated: {what} needs {}, only {} left",
                    byte_count(n),
                    byte_count(self.remaining())
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be<const N: usize>(&mut self, what: &str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn len8(&mut self, what: &str) -> Result<usize, WireError> {
        Ok(usize::from(self.be::<1>(what)?[0]))
    }

    fn len16(&mut self, what: &str) -> Result<usize, WireError> {
        Ok(usize::from(u16::from_be_bytes(self.be(what)?)))
    }

    fn len32(&mut self, what: &str) -> Result<usize, WireError> {
        // usize is at least 32 bits on every target Hopper builds for.
        Ok(u32::from_be_bytes(self.be(what)?) as usize)
    }

    /// One whole value, containers included. Iterative: partly read containers wait on an
    /// explicit stack, whose height is the nesting depth.
    ///
    /// Allocation stays linear in the input: `owed` counts the elements (map keys and values
    /// separately) that open containers still expect, each of which needs at least one more
    /// byte, so a container is only opened, and its declared size reserved, when the input
    /// left can still hold everything owed. At most [`MAX_VALUES`] values are read.
    fn value(&mut self) -> Result<Value, WireError> {
        let mut open: Vec<Partial> = Vec::new();
        let mut owed = 0usize;
        loop {
            let start = self.pos;
            let item = self.item()?;
            self.values += 1;
            if self.values > MAX_VALUES {
                return Err(
                    self.error(start, format!("more than {MAX_VALUES} values in one frame"))
                );
            }
            if !open.is_empty() {
                // This item is one of the elements owed.
                owed = owed.saturating_sub(1);
            }
            let mut v = match item {
                Item::Value(v) => v,
                Item::Array(_) | Item::Map(_) if open.len() + self.outer >= MAX_DEPTH => {
                    return Err(self.error(
                        start,
                        format!("arrays and maps nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                Item::Array(n) | Item::Map(n) => {
                    let is_map = matches!(item, Item::Map(_));
                    let units = if is_map { n.saturating_mul(2) } else { n };
                    if owed.saturating_add(units) > self.remaining() {
                        let (what, things) = if is_map {
                            ("a map", "entries")
                        } else {
                            ("an array", "elements")
                        };
                        return Err(self.error(
                            start,
                            format!(
                                "truncated: {what} declares {n} {things}, more than the {} left can hold",
                                byte_count(self.remaining())
                            ),
                        ));
                    }
                    match (n, is_map) {
                        (0, false) => Value::Array(Vec::new()),
                        (0, true) => Value::Map(Vec::new()),
                        (n, false) => {
                            owed += units;
                            open.push(Partial::Array(Vec::with_capacity(n), n));
                            continue;
                        }
                        (n, true) => {
                            owed += units;
                            open.push(Partial::Map(Vec::with_capacity(n), None, n));
                            continue;
                        }
                    }
                }
            };
            // Hand the value to the innermost open container, closing those it completes.
            loop {
                let complete = match open.last_mut() {
                    None => return Ok(v),
                    Some(Partial::Array(items, n)) => {
                        items.push(v);
                        items.len() == *n
                    }
                    Some(Partial::Map(pairs, key, n)) => match key.take() {
                        None => {
                            *key = Some(v);
                            false
                        }
                        Some(k) => {
                            pairs.push((k, v));
                            pairs.len() == *n
                        }
                    },
                };
                if !complete {
                    break;
                }
                v = match open.pop() {
                    Some(Partial::Array(items, _)) => Value::Array(items),
                    Some(Partial::Map(pairs, _, _)) => Value::Map(pairs),
                    None => return Err(self.error(start, "internal: no open container")),
                };
            }
        }
    }

    /// One scalar value, or the header of an array or map.
    fn item(&mut self) -> Result<Item, WireError> {
        let start = self.pos;
        let marker = self.be::<1>("a value")?[0];
        Ok(Item::Value(match marker {
            0x00..=0x7f => Value::from(marker),
            0x80..=0x8f => return Ok(Item::Map(usize::from(marker & 0x0f))),
            0x90..=0x9f => return Ok(Item::Array(usize::from(marker & 0x0f))),
            0xa0..=0xbf => self.str(start, usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(self.error(start, "the reserved marker 0xc1 is not a value")),
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 => {
                let n = self.len8("a bin8 length")?;
                Value::Binary(self.take(n, "a bin8 body")?.to_vec())
            }
            0xc5 => {
                let n = self.len16("a bin16 length")?;
                Value::Binary(self.take(n, "a bin16 body")?.to_vec())
            }
            0xc6 => {
                let n = self.len32("a bin32 length")?;
                Value::Binary(self.take(n, "a bin32 body")?.to_vec())
            }
            0xc7 => {
                let n = self.len8("an ext8 length")?;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.len16("an ext16 length")?;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.len32("an ext32 length")?;
                self.ext(n)?
            }
            0xca => Value::F32(f32::from_be_bytes(self.be("a float32")?)),
            0xcb => Value::F64(f64::from_be_bytes(self.be("a float64")?)),
            0xcc => Value::from(self.be::<1>("a uint8")?[0]),
            0xcd => Value::from(u16::from_be_bytes(self.be("a uint16")?)),
            0xce => Value::from(u32::from_be_bytes(self.be("a uint32")?)),
            0xcf => Value::from(u64::from_be_bytes(self.be("a uint64")?)),
            0xd0 => Value::from(i8::from_be_bytes(self.be("an int8")?)),
            0xd1 => Value::from(i16::from_be_bytes(self.be("an int16")?)),
            0xd2 => Value::from(i32::from_be_bytes(self.be("an int32")?)),
            0xd3 => Value::from(i64::from_be_bytes(self.be("an int64")?)),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => {
                let n = self.len8("a str8 length")?;
                self.str(start, n)?
            }
            0xda => {
                let n = self.len16("a str16 length")?;
                self.str(start, n)?
            }
            0xdb => {
                let n = self.len32("a str32 length")?;
                self.str(start, n)?
            }
            0xdc => return Ok(Item::Array(self.len16("an array16 length")?)),
            0xdd => return Ok(Item::Array(self.len32("an array32 length")?)),
            0xde => return Ok(Item::Map(self.len16("a map16 length")?)),
            0xdf => return Ok(Item::Map(self.len32("a map32 length")?)),
            0xe0..=0xff => Value::from(marker as i8),
        }))
    }

    fn str(&mut self, start: usize, n: usize) -> Result<Value, WireError> {
        let bytes = self.take(n, "a string body")?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::from(s)),
            Err(e) => Err(self.error(
                start,
                format!(
                    "a string is not valid UTF-8 (bad byte at offset {} of the string)",
                    e.valid_up_to()
                ),
            )),
        }
    }

    fn ext(&mut self, n: usize) -> Result<Value, WireError> {
        let ty = self.be::<1>("an ext type")?[0] as i8;
        Ok(Value::Ext(ty, self.take(n, "an ext body")?.to_vec()))
    }
}

/// A Python object Locust's msgpack hooks carry as a map (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialObject<'a> {
    /// `{"__datetime__": true, "as_str": "%Y%m%dT%H:%M:%S.%f"}`: a naive `datetime`, as text.
    Datetime(&'a str),
    /// `{"__ObjectId__": true, "as_str": hex}`: a BSON ObjectId, as hex text.
    ObjectId(&'a str),
}

/// Recognises Locust's special maps the way its decode hook does: a map holding the key
/// `"__datetime__"` (or else `"__ObjectId__"`), whatever its value, and a string `"as_str"`.
/// `None` for everything else (Locust itself would fail on such a map without `as_str`;
/// Hopper keeps it as a plain map).
pub fn special_object(v: &Value) -> Option<SpecialObject<'_>> {
    let pairs = v.as_map()?;
    let has = |key: &str| pairs.iter().any(|(k, _)| k.as_str() == Some(key));
    let as_str = pairs
        .iter()
        .rev()
        .find(|(k, _)| k.as_str() == Some("as_str"))
        .and_then(|(_, v)| v.as_str());
    if has("__datetime__") {
        as_str.map(SpecialObject::Datetime)
    } else if has("__ObjectId__") {
        as_str.map(SpecialObject::ObjectId)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(v, &mut out);
        out
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn integers_take_python_widths() {
        let cases: [(i128, &str); 14] = [
            (0, "00"),
            (127, "7f"),
            (128, "cc80"),
            (255, "ccff"),
            (256, "cd0100"),
            (65536, "ce00010000"),
            (1 << 32, "cf0000000100000000"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0df"),
            (-129, "d1ff7f"),
            (-32769, "d2ffff7fff"),
            (-(1 << 31) - 1, "d3ffffffff7fffffff"),
            (150, "cc96"),
        ];
        for (n, want) in cases {
            let v = if n < 0 {
                Value::from(n as i64)
            } else {
                Value::from(n as u64)
            };
            assert_eq!(hex(&enc(&v)), want, "{n}");
            assert_eq!(decode_value(&enc(&v)).unwrap(), v);
        }
    }

    #[test]
    fn floats_are_always_float64() {
        assert_eq!(hex(&enc(&Value::F64(1.0))), "cb3ff0000000000000");
        assert_eq!(hex(&enc(&Value::F32(1.0))), "cb3ff0000000000000");
        // A float32 from a peer is read (Python reads it as a float too).
        assert_eq!(
            decode_value(&[0xca, 0x3f, 0x80, 0, 0]).unwrap(),
            Value::F32(1.0)
        );
    }

    #[test]
    fn histogram_keys_match_the_reference_capture() {
        // §6.12: response_times {150: 1, 3400: 1}.
        let v = Value::Map(vec![
            (Value::from(150u64), Value::from(1u64)),
            (Value::from(3400u64), Value::from(1u64)),
        ]);
        assert_eq!(hex(&enc(&v)), "82cc9601cd0d4801");
        assert_eq!(decode_value(&enc(&v)).unwrap(), v);
    }

    #[test]
    fn rejects_what_python_rejects() {
        let err = |b: &[u8]| decode_value(b).unwrap_err().to_string();
        assert_eq!(
            err(&[0xc0, 0xc0]),
            "invalid msgpack at byte 1: 1 byte left over after the end of the value"
        );
        assert_eq!(
            err(&[0xa1, 0xff]),
            "invalid msgpack at byte 0: a string is not valid UTF-8 (bad byte at offset 0 of the string)"
        );
        assert_eq!(
            err(&[0xc1]),
            "invalid msgpack at byte 0: the reserved marker 0xc1 is not a value"
        );
        assert_eq!(
            err(&[0x92, 0x01]),
            "invalid msgpack at byte 0: truncated: an array declares 2 elements, more than the 1 byte left can hold"
        );
        assert_eq!(
            err(&[0x92, 0x01, 0xcd, 0x01]),
            "invalid msgpack at byte 3: truncated: a uint16 needs 2 bytes, only 1 byte left"
        );
        assert_eq!(
            err(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
            "invalid msgpack at byte 0: truncated: an array declares 4294967295 elements, more than the 1 byte left can hold"
        );
        assert_eq!(
            err(&[0xdf, 0x80, 0, 0, 0, 1, 2, 3]),
            "invalid msgpack at byte 0: truncated: a map declares 2147483648 entries, more than the 3 bytes left can hold"
        );
        assert_eq!(
            err(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            "invalid msgpack at byte 5: truncated: a string body needs 4294967295 bytes, only 1 byte left"
        );
        assert_eq!(
            err(&[]),
            "invalid msgpack at byte 0: truncated: a value needs 1 byte, only 0 bytes left"
        );
    }

    #[test]
    fn nesting_is_bounded_like_python() {
        // 1024 nested arrays are fine (as in Python); 1025 are not.
        let mut ok = vec![0x91; MAX_DEPTH];
        ok.push(0xc0);
        let v = decode_value(&ok).unwrap();
        // Encoding (iterative) and dropping such a value fit a test thread's stack.
        assert_eq!(enc(&v), ok);
        drop(v);
        let mut deep = vec![0x91; MAX_DEPTH + 1];
        deep.push(0xc0);
        assert_eq!(
            decode_value(&deep).unwrap_err().to_string(),
            "invalid msgpack at byte 1024: arrays and maps nested deeper than 1024 levels"
        );
        // Maps too, and far deeper input stops at the bound.
        let deep = vec![0x81; 100_000];
        assert!(decode_value(&deep).is_err());
    }

    #[test]
    fn forged_sizes_cannot_reserve_much() {
        // Nested arrays each declaring ~1M elements over ~1M bytes of input: each claim alone
        // fits the bytes left, together they do not, and the second is refused before anything
        // is reserved for it.
        let mut b = Vec::new();
        for _ in 0..1000 {
            b.extend_from_slice(&[0xdd, 0x00, 0x0f, 0xff, 0xff]);
        }
        b.extend(std::iter::repeat_n(0xc0, 1_100_000));
        assert_eq!(
            decode_value(&b).unwrap_err().to_string(),
            "invalid msgpack at byte 5: truncated: an array declares 1048575 elements, \
             more than the 1104990 bytes left can hold"
        );
        // Sizes that add up are fine: [[nil; 3], {1: nil}].
        let v = decode_value(&[0x92, 0x93, 0xc0, 0xc0, 0xc0, 0x81, 0x01, 0xc0]).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        // The value budget.
        let mut many = vec![0xdd];
        many.extend_from_slice(&(MAX_VALUES as u32).to_be_bytes());
        many.extend(std::iter::repeat_n(0xc0, MAX_VALUES));
        assert_eq!(
            decode_value(&many).unwrap_err().to_string(),
            format!(
                "invalid msgpack at byte {}: more than {MAX_VALUES} values in one frame",
                MAX_VALUES + 4
            )
        );
    }

    #[test]
    fn ext_and_bin_round_trip() {
        for v in [
            Value::Ext(1, vec![2]),
            Value::Ext(-1, vec![0; 4]),
            Value::Ext(5, vec![1, 2, 3]),
            Value::Ext(5, vec![9; 300]),
            Value::Binary(vec![]),
            Value::Binary(vec![7; 70_000]),
        ] {
            assert_eq!(decode_value(&enc(&v)).unwrap(), v);
        }
        assert_eq!(hex(&enc(&Value::Ext(1, vec![2]))), "d40102");
        assert_eq!(
            hex(&enc(&Value::Ext(5, vec![1, 2, 3]))),
            "c7030501 0203".replace(' ', "")
        );
    }

    #[test]
    fn special_maps_are_recognised() {
        let dt = Value::Map(vec![
            (Value::from("__datetime__"), Value::Boolean(true)),
            (
                Value::from("as_str"),
                Value::from("20250102T03:04:05.678901"),
            ),
        ]);
        assert_eq!(
            special_object(&dt),
            Some(SpecialObject::Datetime("20250102T03:04:05.678901"))
        );
        let oid = Value::Map(vec![
            (Value::from("__ObjectId__"), Value::Boolean(true)),
            (Value::from("as_str"), Value::from("abc")),
        ]);
        assert_eq!(special_object(&oid), Some(SpecialObject::ObjectId("abc")));
        let broken = Value::Map(vec![(Value::from("__datetime__"), Value::Boolean(true))]);
        assert_eq!(special_object(&broken), None);
        assert_eq!(special_object(&Value::from(3u64)), None);
    }
}
