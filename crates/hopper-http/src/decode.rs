//! Response bodies decoded by their `Content-Encoding` (gzip, deflate, br), as `requests`
//! (urllib3) decodes them before `response.content` is read.
//!
//! Decoding is incremental: each frame of the body is written into a chain of write-mode
//! decoders that ends in a [`Sink`], which either keeps the decoded bytes (for
//! [`crate::Response::bytes`]) or only counts them (for `discard_body()`), so a large
//! compressed download never sits in memory whole. The decoded length is what Hopper
//! records as the response length, like `len(response.content)` in Locust.
//!
//! What urllib3 does and this module copies: `gzip` and `x-gzip` are gzip (several members
//! decode one after another), `deflate` is a zlib stream or, when the data has no zlib header,
//! raw deflate, `identity` is nothing, a list (`gzip, br`) is undone last encoding first, and
//! at most five encodings are accepted. An encoding Hopper does not know (`zstd`, `compress`)
//! leaves the body as it came. A body that does not decode is a failed request with
//! requests' `ContentDecodingError(...)` text. A gzip or brotli stream cut short is such a
//! failure too (Python's decoders let it pass); a truncated zlib or raw deflate stream is
//! not detected, as in Python.

use crate::errors;
use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_ENCODING};
use std::io::{self, Write};

/// urllib3's limit on the number of encodings in one `Content-Encoding`.
const MAX_ENCODINGS: usize = 5;

/// The buffer the brotli decoder writes through.
const BROTLI_BUFFER: usize = 16 * 1024;

/// One content coding Hopper can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Br,
}

/// Decodes one response body as its frames arrive.
pub(crate) struct Decoder {
    /// The `Content-Encoding` as urllib3 quotes it in its error (lowercased).
    header: String,
    /// Codings in the order the server applied them.
    codings: Vec<Coding>,
    keep: bool,
    /// Built on the first byte of body: an empty body (a HEAD, a 304) is not decoded.
    stage: Option<Box<dyn Stage>>,
    /// The first failure; later data is ignored (but still read off the wire).
    failed: Option<String>,
}

impl Decoder {
    /// The decoder the response's `Content-Encoding` asks for, or `None` when the body is
    /// to be taken as it is (no header, `identity`, or an encoding Hopper does not know).
    /// `keep`: whether the decoded bytes are kept or only counted.
    pub(crate) fn for_response(headers: &HeaderMap, keep: bool) -> Option<Decoder> {
        let mut values = headers.get_all(CONTENT_ENCODING).iter();
        let first = values.next()?;
        let mut header = String::from_utf8_lossy(first.as_bytes()).to_ascii_lowercase();
        for more in values {
            header.push_str(", ");
            header.push_str(&String::from_utf8_lossy(more.as_bytes()).to_ascii_lowercase());
        }
        let mut codings = Vec::new();
        for token in header.split(',').map(str::trim) {
            match token {
                "" | "identity" => {}
                "gzip" | "x-gzip" => codings.push(Coding::Gzip),
                "deflate" => codings.push(Coding::Deflate),
                "br" => codings.push(Coding::Br),
                // Unknown: leave the whole body alone, as urllib3 does for one it cannot undo.
                _ => return None,
            }
        }
        if codings.is_empty() {
            return None;
        }
        let failed = (codings.len() > MAX_ENCODINGS).then(|| {
            decoding_error(
                &header,
                &format!(
                    "Too many content encodings in the chain: {} > {MAX_ENCODINGS}",
                    codings.len()
                ),
            )
        });
        Some(Decoder {
            header,
            codings,
            keep,
            stage: None,
            failed,
        })
    }

    /// Feeds the next piece of the encoded body.
    pub(crate) fn write(&mut self, data: &[u8]) {
        if self.failed.is_some() || data.is_empty() {
            return;
        }
        let keep = self.keep;
        let codings = &self.codings;
        let stage = self.stage.get_or_insert_with(|| chain(codings, keep));
        if let Err(e) = stage.write_all(data) {
            self.failed = Some(decoding_error(&self.header, &e.to_string()));
        }
    }

    /// The decoded body (empty unless kept) and its length, or requests'
    /// `ContentDecodingError(...)` text.
    pub(crate) fn finish(self) -> Result<(Bytes, u64), String> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(stage) = self.stage else {
            return Ok((Bytes::new(), 0));
        };
        match stage.end() {
            Ok(sink) => Ok((sink.kept.map(Bytes::from).unwrap_or_default(), sink.len)),
            Err(e) => Err(decoding_error(&self.header, &e.to_string())),
        }
    }
}

/// `ContentDecodingError(DecodeError('Received response with content-encoding: gzip, but
/// failed to decode it.', error('...')))`: requests' text, with the decoder's reason in
/// place of Python zlib's (which names zlib's own error codes).
fn decoding_error(header: &str, reason: &str) -> String {
    let msg =
        format!("Received response with content-encoding: {header}, but failed to decode it.");
    format!(
        "ContentDecodingError(DecodeError({}, {}))",
        hopper_stats::pyfmt::python_repr_str(&msg),
        errors::exception("error", reason)
    )
}

/// The decoders for `codings` (as applied by the server), ending in a sink.
fn chain(codings: &[Coding], keep: bool) -> Box<dyn Stage> {
    let mut next: Box<dyn Stage> = Box::new(Sink {
        kept: keep.then(Vec::new),
        len: 0,
    });
    // The first coding applied is undone last: it sits nearest the sink.
    for coding in codings {
        next = match coding {
            Coding::Gzip => Box::new(Gzip(flate2::write::MultiGzDecoder::new(next))),
            Coding::Deflate => Box::new(Deflate::Undecided(Some(next), Vec::new())),
            Coding::Br => Box::new(Brotli(brotli_decompressor::DecompressorWriter::new(
                next,
                BROTLI_BUFFER,
            ))),
        };
    }
    next
}

/// One step of a decoding chain: a writer that, at the end of the body, checks that its
/// stream was complete and hands back the sink at the end of the chain.
trait Stage: Write + Send {
    fn end(self: Box<Self>) -> io::Result<Sink>;
}

/// The end of a chain: keeps the decoded bytes or only counts them.
struct Sink {
    kept: Option<Vec<u8>>,
    len: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.len += buf.len() as u64;
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stage for Sink {
    fn end(self: Box<Self>) -> io::Result<Sink> {
        Ok(*self)
    }
}

struct Gzip(flate2::write::MultiGzDecoder<Box<dyn Stage>>);

impl Write for Gzip {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stage for Gzip {
    fn end(self: Box<Self>) -> io::Result<Sink> {
        // Checks the trailer (CRC and length): a cut-off member fails here.
        self.0.finish()?.end()
    }
}

/// `deflate` is meant to be a zlib stream, but some servers send raw deflate: like urllib3,
/// decide by the first two bytes.
enum Deflate {
    Undecided(Option<Box<dyn Stage>>, Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Box<dyn Stage>>),
    Raw(flate2::write::DeflateDecoder<Box<dyn Stage>>),
}

/// A zlib header: compression method 8 with a window of at most 32 KiB, and the check bits.
fn is_zlib_header(b0: u8, b1: u8) -> bool {
    b0 & 0x0f == 8 && b0 >> 4 <= 7 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0
}

impl Write for Deflate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Deflate::Undecided(next, seen) = self {
            seen.extend_from_slice(buf);
            if seen.len() < 2 {
                return Ok(buf.len());
            }
            let seen = std::mem::take(seen);
            let next = next
                .take()
                .ok_or_else(|| io::Error::other("deflate decoder reused"))?;
            *self = if is_zlib_header(seen[0], seen[1]) {
                Deflate::Zlib(flate2::write::ZlibDecoder::new(next))
            } else {
                Deflate::Raw(flate2::write::DeflateDecoder::new(next))
            };
            self.write_all(&seen)?;
            return Ok(buf.len());
        }
        match self {
            Deflate::Zlib(d) => d.write(buf),
            Deflate::Raw(d) => d.write(buf),
            Deflate::Undecided(..) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Deflate::Zlib(d) => d.flush(),
            Deflate::Raw(d) => d.flush(),
            Deflate::Undecided(..) => Ok(()),
        }
    }
}

impl Stage for Deflate {
    fn end(self: Box<Self>) -> io::Result<Sink> {
        match *self {
            Deflate::Zlib(d) => d.finish()?.end(),
            Deflate::Raw(d) => d.finish()?.end(),
            Deflate::Undecided(Some(next), seen) if seen.is_empty() => next.end(),
            Deflate::Undecided(..) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "deflate stream of one byte",
            )),
        }
    }
}

struct Brotli(brotli_decompressor::DecompressorWriter<Box<dyn Stage>>);

/// brotli-decompressor reports bad data as a bare "Invalid Data".
fn brotli_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidData && e.to_string() == "Invalid Data" {
        io::Error::new(io::ErrorKind::InvalidData, "invalid brotli stream")
    } else {
        e
    }
}

impl Write for Brotli {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(brotli_error)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(brotli_error)
    }
}

impl Stage for Brotli {
    fn end(self: Box<Self>) -> io::Result<Sink> {
        match self.0.into_inner() {
            Ok(next) => next.end(),
            // The stream stopped before its last meta-block.
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "brotli stream cut short",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TEXT: &[u8] =
        b"Hopper decodes what the server encoded. Hopper decodes what the server encoded.";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_str(encoding).unwrap());
        h
    }

    /// Decodes `body` fed in pieces of `piece` bytes.
    fn decode(
        encoding: &str,
        body: &[u8],
        keep: bool,
        piece: usize,
    ) -> Result<(Bytes, u64), String> {
        let mut d = Decoder::for_response(&headers(encoding), keep).expect("a decoder");
        for chunk in body.chunks(piece) {
            d.write(chunk);
        }
        d.finish()
    }

    #[test]
    fn every_coding_decodes_whole_or_in_pieces_kept_or_counted() {
        let cases: [(&str, Vec<u8>); 6] = [
            ("gzip", gzip(TEXT)),
            ("x-gzip", gzip(TEXT)),
            ("deflate", zlib(TEXT)),
            ("deflate", raw_deflate(TEXT)),
            ("br", br(TEXT)),
            ("GZIP", gzip(TEXT)),
        ];
        for (encoding, body) in &cases {
            for piece in [1, 3, 1 << 20] {
                let (kept, len) = decode(encoding, body, true, piece).unwrap();
                assert_eq!(
                    (&kept[..], len),
                    (TEXT, TEXT.len() as u64),
                    "{encoding} {piece}"
                );
                let (kept, len) = decode(encoding, body, false, piece).unwrap();
                assert_eq!(
                    (kept.len(), len),
                    (0, TEXT.len() as u64),
                    "{encoding} {piece}"
                );
            }
        }
    }

    #[test]
    fn lists_are_undone_last_first_and_several_gzip_members_join() {
        let body = br(&gzip(TEXT));
        let (kept, _) = decode("gzip, br", &body, true, 7).unwrap();
        assert_eq!(&kept[..], TEXT);
        let mut h = HeaderMap::new();
        h.append(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h.append(CONTENT_ENCODING, HeaderValue::from_static("br"));
        let mut d = Decoder::for_response(&h, true).unwrap();
        d.write(&body);
        assert_eq!(&d.finish().unwrap().0[..], TEXT);

        let mut two = gzip(b"one ");
        two.extend(gzip(b"two"));
        assert_eq!(&decode("gzip", &two, true, 5).unwrap().0[..], b"one two");
    }

    #[test]
    fn identity_unknown_and_empty_bodies_are_left_alone() {
        assert!(Decoder::for_response(&HeaderMap::new(), true).is_none());
        assert!(Decoder::for_response(&headers("identity"), true).is_none());
        assert!(Decoder::for_response(&headers("zstd"), true).is_none());
        assert!(Decoder::for_response(&headers("gzip, compress"), true).is_none());
        // A HEAD answer or a 304 says gzip but has no body.
        let d = Decoder::for_response(&headers("gzip"), true).unwrap();
        assert_eq!(d.finish().unwrap(), (Bytes::new(), 0));
    }

    #[test]
    fn corrupt_and_truncated_bodies_give_requests_text() {
        let e = decode("gzip", b"this is not gzip at all", true, 4).unwrap_err();
        assert_eq!(
            e,
            "ContentDecodingError(DecodeError('Received response with content-encoding: gzip, \
             but failed to decode it.', error('invalid gzip header')))"
        );
        let full = gzip(TEXT);
        let e = decode("gzip", &full[..full.len() - 6], true, 100).unwrap_err();
        assert!(e.starts_with("ContentDecodingError(DecodeError("), "{e}");
        let e = decode("br", b"\xff\xff\xff garbage garbage", false, 3).unwrap_err();
        assert!(e.contains("content-encoding: br,"), "{e}");
        assert!(e.ends_with("error('invalid brotli stream')))"), "{e}");
        let full = br(TEXT);
        let e = decode("br", &full[..full.len() / 2], true, 100).unwrap_err();
        assert!(e.ends_with("error('brotli stream cut short')))"), "{e}");
        let e = decode("deflate", b"\x78\x9c not deflate data", true, 100).unwrap_err();
        assert!(e.contains("content-encoding: deflate,"), "{e}");
        let e = decode("gzip,gzip,gzip,gzip,gzip,gzip", &full, true, 100).unwrap_err();
        assert!(
            e.contains("Too many content encodings in the chain: 6 > 5"),
            "{e}"
        );
    }

    #[test]
    fn zlib_headers_are_told_from_raw_deflate() {
        let z = zlib(TEXT);
        assert!(is_zlib_header(z[0], z[1]));
        assert!(!is_zlib_header(b'H', b'o'));
    }
}
