//! A small blocking HTTP/1.1 client for the web API tests, over plain TCP or TLS.
//!
//! Each request opens its own connection with `Connection: close` and reads the whole reply,
//! which keeps the client a few lines long and the tests independent of keep-alive.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// A parsed reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }
}

/// Where the server is: `127.0.0.1:port`, optionally TLS trusting one certificate (DER).
#[derive(Clone)]
pub struct Server {
    pub addr: String,
    pub tls_root: Option<Vec<u8>>,
}

impl Server {
    pub fn plain(addr: &str) -> Server {
        Server {
            addr: addr.to_string(),
            tls_root: None,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    pub fn post_form(&self, path: &str, form: &str) -> Reply {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    }

    /// Sends one request and reads the whole reply.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut raw = Vec::new();
        let tcp = TcpStream::connect(&self.addr)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr));
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        match &self.tls_root {
            None => {
                let mut tcp = tcp;
                tcp.write_all(head.as_bytes()).unwrap();
                tcp.write_all(body).unwrap();
                tcp.read_to_end(&mut raw).unwrap();
            }
            Some(root) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(rustls::pki_types::CertificateDer::from(root.clone()))
                    .unwrap();
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                tls.write_all(head.as_bytes()).unwrap();
                tls.write_all(body).unwrap();
                // A server closing without close_notify is fine for these tests.
                let _ = tls.read_to_end(&mut raw);
            }
        }
        parse_reply(&raw)
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete reply: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// The `host:port` in a "Starting web interface at http(s)://host:port/base" log line.
pub fn web_addr_from_log(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("Starting web interface at "))?;
    let url = line.split("Starting web interface at ").nth(1)?.trim();
    let rest = url.split("://").nth(1)?;
    let hostport = rest.split('/').next()?;
    let port = hostport.rsplit(':').next()?;
    Some(format!("127.0.0.1:{port}"))
}
