//! Request bodies: bytes, a file streamed from disk ([`crate::RequestBuilder::body_file`])
//! and `multipart/form-data` ([`Multipart`]), requests' `data=`, `data=open(...)` and
//! `files=`.
//!
//! A body is kept as a recipe ([`Body`]) rather than as a stream, because one request may
//! send it more than once: a 307 or 308 redirect sends it again, and each send opens the
//! files anew. (The retry of a request that met a connection the server had closed needs no
//! new stream: hyper hands that request back with its body unread.)
//! Files are opened before the request goes out, so a missing file fails the request (with
//! its name in the text) without sending anything, and their sizes give the
//! `Content-Length` up front: no chunked encoding. While sending, files are read in
//! [`CHUNK`]-sized pieces on tokio's blocking pool, one piece at a time per request, so an
//! upload of any size holds a few chunks in memory, never the file.

use crate::errors;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// How much of a file is read at a time while sending it.
const CHUNK: usize = 64 * 1024;

/// What a request sends, as a recipe that can make a fresh stream for every send.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// In memory (also the empty body): sent as it is, with nothing to open.
    Bytes(Bytes),
    /// Pieces in memory and files read from disk while sending, in order.
    Parts(Arc<[Segment]>),
}

/// One piece of a [`Body::Parts`].
#[derive(Debug)]
pub(crate) enum Segment {
    Bytes(Bytes),
    File(PathBuf),
}

impl Body {
    pub(crate) fn empty() -> Body {
        Body::Bytes(Bytes::new())
    }

    /// A body ready to send. Files are opened (on the blocking pool) and measured here; a
    /// file that cannot be opened is the request's failure text, naming the file.
    pub(crate) async fn open(&self) -> Result<ReqBody, String> {
        match self {
            Body::Bytes(b) => Ok(ReqBody::full(b.clone())),
            Body::Parts(segments) => {
                let segments = segments.clone();
                tokio::task::spawn_blocking(move || open_segments(&segments))
                    .await
                    .map_err(|e| {
                        errors::exception("OSError", &format!("could not open the body: {e}"))
                    })?
                    .map(|stream| ReqBody(Kind::Stream(Box::new(stream))))
            }
        }
    }
}

fn open_segments(segments: &[Segment]) -> Result<FileStream, String> {
    let mut queue = VecDeque::with_capacity(segments.len());
    let mut remaining = 0u64;
    for segment in segments {
        match segment {
            Segment::Bytes(b) => {
                remaining += b.len() as u64;
                queue.push_back(Source::Bytes(b.clone()));
            }
            Segment::File(path) => {
                let file = File::open(path).map_err(|e| file_error(&e, path))?;
                let meta = file.metadata().map_err(|e| file_error(&e, path))?;
                if meta.is_dir() {
                    return Err(file_error(&io::Error::from_raw_os_error(21), path));
                }
                remaining += meta.len();
                queue.push_back(Source::File(OpenFile {
                    file,
                    left: meta.len(),
                    path: Arc::from(path.as_path()),
                }));
            }
        }
    }
    Ok(FileStream {
        queue,
        reading: None,
        remaining,
    })
}

/// A file error in Python's words, naming the file: `FileNotFoundError(2, "No such file or
/// directory: '/tmp/upload.bin'")`. (Python's `repr` would drop the name; the text is what
/// a failures table shows, and there the name is what matters.)
pub(crate) fn file_error(e: &io::Error, path: &Path) -> String {
    let full = e.to_string();
    let reason = full
        .rsplit_once(" (os error ")
        .map_or(full.as_str(), |(t, _)| t);
    let text = format!("{reason}: '{}'", path.display());
    match e.raw_os_error() {
        Some(code) => {
            let class = match code {
                2 => "FileNotFoundError",
                1 | 13 => "PermissionError",
                21 => "IsADirectoryError",
                _ => "OSError",
            };
            format!(
                "{class}({code}, {})",
                hopper_stats::pyfmt::python_repr_str(&text)
            )
        }
        None => errors::exception("OSError", &text),
    }
}

/// A body failure while sending (a file that cannot be read, or that shrank); hyper hands it
/// back as the cause of the request's error, and its text is the failure text.
#[derive(Debug)]
pub(crate) struct BodyError(pub(crate) String);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// The body hyper sends: bytes in memory (exactly what `Full<Bytes>` does, without boxing),
/// or a stream of pieces and files.
pub(crate) struct ReqBody(Kind);

enum Kind {
    /// `None` once sent, or from the start for an empty body.
    Full(Option<Bytes>),
    Stream(Box<FileStream>),
}

impl ReqBody {
    pub(crate) fn full(bytes: Bytes) -> ReqBody {
        ReqBody(Kind::Full(Some(bytes).filter(|b| !b.is_empty())))
    }
}

impl hyper::body::Body for ReqBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(stream) => stream.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(stream) => stream.remaining == 0 && stream.reading.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Exact, so hyper sends Content-Length (HTTP/1.1) or checks it (HTTP/2).
        match &self.0 {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(stream) => SizeHint::with_exact(stream.remaining),
        }
    }
}

/// An open file still to be sent.
struct OpenFile {
    file: File,
    /// Bytes still to send (the size when the request started, less what was sent).
    left: u64,
    path: Arc<Path>,
}

enum Source {
    Bytes(Bytes),
    File(OpenFile),
}

/// The pieces of a [`Body::Parts`] being sent, with at most one file read under way.
struct FileStream {
    queue: VecDeque<Source>,
    reading: Option<JoinHandle<(OpenFile, io::Result<Bytes>)>>,
    /// Bytes not yet handed to hyper.
    remaining: u64,
}

impl FileStream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            if let Some(read) = &mut self.reading {
                let done = match Pin::new(read).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(done) => done,
                };
                self.reading = None;
                let (mut open, chunk) = match done {
                    Ok(done) => done,
                    Err(e) => {
                        return Poll::Ready(Some(Err(BodyError(errors::exception(
                            "OSError",
                            &format!("reading the body failed: {e}"),
                        )))))
                    }
                };
                return Poll::Ready(Some(match chunk {
                    Ok(chunk) => {
                        open.left -= chunk.len() as u64;
                        self.remaining -= chunk.len() as u64;
                        if open.left > 0 {
                            self.queue.push_front(Source::File(open));
                        }
                        Ok(Frame::data(chunk))
                    }
                    Err(e) => Err(BodyError(read_error(&e, &open))),
                }));
            }
            match self.queue.pop_front() {
                None => return Poll::Ready(None),
                Some(Source::Bytes(b)) => {
                    self.remaining -= b.len() as u64;
                    if !b.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(b))));
                    }
                }
                Some(Source::File(open)) if open.left == 0 => {}
                Some(Source::File(mut open)) => {
                    let want = CHUNK.min(usize::try_from(open.left).unwrap_or(CHUNK));
                    self.reading = Some(tokio::task::spawn_blocking(move || {
                        let chunk = read_chunk(&mut open.file, want);
                        (open, chunk)
                    }));
                }
            }
        }
    }
}

/// Reads exactly `want` bytes, or fails with `UnexpectedEof` when the file ends first.
fn read_chunk(file: &mut File, want: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from(buf))
}

fn read_error(e: &io::Error, open: &OpenFile) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return errors::exception(
            "OSError",
            &format!(
                "'{}' is shorter than when the request started: it changed while being sent",
                open.path.display()
            ),
        );
    }
    file_error(e, &open.path)
}

/// A `multipart/form-data` body, requests' `files=` (with `data=` fields): text fields,
/// files streamed from disk, and bytes in memory, each part with its own file name and
/// content type.
///
/// ```no_run
/// # async fn demo(client: &mut hopper_http::HttpClient) {
/// use hopper_http::{Multipart, Part};
/// let form = Multipart::new()
///     .text("description", "a cat")
///     .file("photo", "/data/cat.jpg") // streamed, file name "cat.jpg"
///     .part(Part::bytes("notes", "some notes").filename("notes.txt").content_type("text/plain"));
/// client.post("/upload").multipart(form).send().await;
/// # }
/// ```
///
/// As in requests, a file part's name defaults to the file's own name, a bytes part's to the
/// field name, and a part has no `Content-Type` unless one is given. The boundary is 32
/// random hex digits, as requests makes it.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

/// One part of a [`Multipart`] body.
#[derive(Debug, Clone)]
pub struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: PartData,
}

#[derive(Debug, Clone)]
enum PartData {
    Text(Bytes),
    Bytes(Bytes),
    File(PathBuf),
}

impl Part {
    /// A plain field (requests' `data={"name": "value"}`): no file name.
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Part {
        Part {
            name: name.into(),
            filename: None,
            content_type: None,
            data: PartData::Text(Bytes::from(value.into())),
        }
    }

    /// A file read from disk while sending; its file name is the path's last component.
    pub fn file(name: impl Into<String>, path: impl Into<PathBuf>) -> Part {
        let path = path.into();
        let filename = path.file_name().map(|f| f.to_string_lossy().into_owned());
        Part {
            name: name.into(),
            filename,
            content_type: None,
            data: PartData::File(path),
        }
    }

    /// Bytes sent as a file (requests' `files={"name": b"..."}`); its file name is the
    /// field name unless [`Part::filename`] says otherwise.
    pub fn bytes(name: impl Into<String>, data: impl Into<Bytes>) -> Part {
        let name = name.into();
        Part {
            filename: Some(name.clone()),
            name,
            content_type: None,
            data: PartData::Bytes(data.into()),
        }
    }

    /// The `filename` the part carries.
    pub fn filename(mut self, filename: impl Into<String>) -> Part {
        self.filename = Some(filename.into());
        self
    }

    /// The part's `Content-Type` header.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Part {
        self.content_type = Some(content_type.into());
        self
    }
}

impl Multipart {
    /// An empty form with a fresh boundary.
    pub fn new() -> Multipart {
        Multipart {
            boundary: format!("{:032x}", fastrand::u128(..)),
            parts: Vec::new(),
        }
    }

    /// Adds a plain field.
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Multipart {
        self.part(Part::text(name, value))
    }

    /// Adds a file streamed from disk (see [`Part::file`]).
    pub fn file(self, name: impl Into<String>, path: impl Into<PathBuf>) -> Multipart {
        self.part(Part::file(name, path))
    }

    /// Adds bytes sent as a file (see [`Part::bytes`]).
    pub fn bytes(self, name: impl Into<String>, data: impl Into<Bytes>) -> Multipart {
        self.part(Part::bytes(name, data))
    }

    /// Adds a part built with [`Part`]'s constructors and setters.
    pub fn part(mut self, part: Part) -> Multipart {
        self.parts.push(part);
        self
    }

    /// The boundary between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The `Content-Type` header of the request: `multipart/form-data; boundary=...`.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body as a recipe: framing and in-memory parts joined into as few pieces as
    /// possible, files left to be read while sending.
    pub(crate) fn into_body(self) -> Body {
        let mut segments = Vec::new();
        let mut text = Vec::new();
        for part in &self.parts {
            text.extend_from_slice(b"--");
            text.extend_from_slice(self.boundary.as_bytes());
            text.extend_from_slice(b"\r\nContent-Disposition: form-data; ");
            header_param(&mut text, "name", &part.name);
            if let Some(filename) = &part.filename {
                text.extend_from_slice(b"; ");
                header_param(&mut text, "filename", filename);
            }
            text.extend_from_slice(b"\r\n");
            if let Some(ct) = &part.content_type {
                text.extend_from_slice(b"Content-Type: ");
                text.extend_from_slice(ct.as_bytes());
                text.extend_from_slice(b"\r\n");
            }
            text.extend_from_slice(b"\r\n");
            match &part.data {
                PartData::Text(b) | PartData::Bytes(b) => text.extend_from_slice(b),
                PartData::File(path) => {
                    segments.push(Segment::Bytes(Bytes::from(std::mem::take(&mut text))));
                    segments.push(Segment::File(path.clone()));
                }
            }
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"--");
        text.extend_from_slice(self.boundary.as_bytes());
        text.extend_from_slice(b"--\r\n");
        segments.push(Segment::Bytes(Bytes::from(text)));
        Body::Parts(segments.into())
    }
}

/// `name="value"` with `"`, CR and LF percent-encoded, as urllib3 (and browsers) write them.
fn header_param(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for b in value.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"%22"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn temp_file(tag: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "hopper-http-body-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&path, contents).unwrap();
        path
    }

    async fn collect(body: &Body) -> Result<Vec<u8>, String> {
        let req = body.open().await?;
        let hint = hyper::body::Body::size_hint(&req).exact();
        let bytes = req.collect().await.map_err(|e| e.0)?.to_bytes();
        assert_eq!(hint, Some(bytes.len() as u64));
        Ok(bytes.to_vec())
    }

    #[tokio::test]
    async fn multipart_frames_parts_like_requests_and_streams_files() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let path = temp_file("multipart", &big);
        let form = Multipart::new()
            .text("title", "a \"quoted\"\r\nname")
            .file("upload", &path)
            .part(
                Part::bytes("notes", "n")
                    .filename("n.txt")
                    .content_type("text/plain"),
            );
        let b = form.boundary().to_string();
        assert_eq!(b.len(), 32);
        let body = form.into_body();
        // Opened twice: each send gets a fresh stream.
        for _ in 0..2 {
            let got = collect(&body).await.unwrap();
            let fname = path.file_name().unwrap().to_string_lossy();
            let mut want = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\na \"quoted\"\r\nname\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{fname}\"\r\n\r\n"
            )
            .into_bytes();
            want.extend_from_slice(&big);
            want.extend_from_slice(
                format!(
                    "\r\n--{b}\r\nContent-Disposition: form-data; name=\"notes\"; filename=\"n.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\nn\r\n--{b}--\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(got.len(), want.len());
            assert!(got == want);
        }
        std::fs::remove_file(&path).unwrap();
        // Gone now: opening names it.
        let e = collect(&body).await.unwrap_err();
        assert_eq!(
            e,
            format!(
                "FileNotFoundError(2, \"No such file or directory: '{}'\")",
                path.display()
            )
        );
    }

    #[test]
    fn names_are_escaped_and_bytes_default_to_the_field_name() {
        let mut out = Vec::new();
        header_param(&mut out, "filename", "a\"b\r\nc");
        assert_eq!(out, b"filename=\"a%22b%0D%0Ac\"");
        let p = Part::bytes("data", "x");
        assert_eq!(p.filename.as_deref(), Some("data"));
        assert_eq!(
            Part::file("f", "/tmp/dir/x.csv").filename.as_deref(),
            Some("x.csv")
        );
        assert_eq!(Part::text("t", "v").filename, None);
    }

    #[tokio::test]
    async fn a_directory_or_a_file_that_shrinks_is_a_failure() {
        let dir = std::env::temp_dir();
        let body = Body::Parts(vec![Segment::File(dir.clone())].into());
        let e = collect(&body).await.unwrap_err();
        assert!(e.starts_with("IsADirectoryError(21, "), "{e}");

        let path = temp_file("shrink", &vec![7u8; 3 * CHUNK]);
        let body = Body::Parts(vec![Segment::File(path.clone())].into());
        let req = body.open().await.unwrap();
        std::fs::write(&path, b"short").unwrap();
        let Err(BodyError(e)) = req.collect().await else {
            panic!("the shrunk file was sent whole");
        };
        assert!(
            e.contains("is shorter than when the request started"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn in_memory_bodies_behave_like_full() {
        let empty = ReqBody::full(Bytes::new());
        assert!(hyper::body::Body::is_end_stream(&empty));
        assert_eq!(hyper::body::Body::size_hint(&empty).exact(), Some(0));
        let some = ReqBody::full(Bytes::from_static(b"abc"));
        assert!(!hyper::body::Body::is_end_stream(&some));
        assert_eq!(hyper::body::Body::size_hint(&some).exact(), Some(3));
    }
}
