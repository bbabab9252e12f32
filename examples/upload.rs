//! Large uploads: every user posts the same file, streamed from disk, again and again.
//! The file is read a chunk at a time while it is sent, so fifty users uploading a 20 MB
//! file each hold a few hundred kilobytes of it between them, not a gigabyte
//! (docs/http.md has the measured figure).
//!
//! The Locust equivalent (requests streams a file object given as `data=`):
//!
//! ```python
//! import os
//! from locust import HttpUser, task
//!
//! UPLOAD_FILE = os.environ["UPLOAD_FILE"]
//!
//! class Uploader(HttpUser):
//!     @task
//!     def upload(self):
//!         with open(UPLOAD_FILE, "rb") as f:
//!             self.client.post("/upload", data=f)
//! ```
//!
//! ```text
//! head -c 20000000 /dev/urandom > /tmp/upload.bin
//! UPLOAD_FILE=/tmp/upload.bin cargo run --release --example upload -- \
//!     -H http://127.0.0.1:8080 --headless -u 50 -r 50 -t 10s -s 60
//! ```
//!
//! The demo target answers `{"bytes": n}`; an upload it did not receive whole is a failure.
//! `-s` (`--stop-timeout`) lets the uploads under way at the end of the run finish.

use hopper::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The file to upload and its size, read once from `UPLOAD_FILE`.
fn upload_file() -> &'static (PathBuf, u64) {
    static FILE: OnceLock<(PathBuf, u64)> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = PathBuf::from(std::env::var_os("UPLOAD_FILE").unwrap_or_default());
        // A missing file is reported by each upload, naming it.
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        (path, size)
    })
}

#[derive(Default)]
struct Uploader;

async fn upload(user: &mut User<Uploader>) -> TaskResult {
    let (path, size) = upload_file();
    user.client
        .post("/upload")
        .body_file(path)
        .expect_json("/bytes", *size)
        .send()
        .await;
    Ok(())
}

fn main() {
    if std::env::var_os("UPLOAD_FILE").is_none() {
        eprintln!("upload: set UPLOAD_FILE to the file every user uploads");
        std::process::exit(2);
    }
    Hopper::new()
        .user(UserClass::new("Uploader", Uploader::default).task(task!(upload)))
        .main()
}
