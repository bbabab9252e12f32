//! A minimal keep-alive HTTP/1.1 server for hopper-core's tests, on a thread and runtime of
//! its own (so the tests' runtimes hold only the users' tasks), answering every request with
//! 200 "ok" and counting connections and requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server counted.
#[derive(Default)]
pub struct Counts {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Requests received, each counted before its answer leaves (so a client that has its
    /// response may read the count).
    pub requests: AtomicUsize,
}

/// Starts the server on 127.0.0.1; returns its port and its counts. It serves until the
/// test process ends.
pub fn start_server() -> (u16, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let server_counts = counts.clone();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            while let Ok((mut tcp, _)) = listener.accept().await {
                server_counts.connections.fetch_add(1, Ordering::SeqCst);
                let counts = server_counts.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = tcp.read(&mut buf).await {
                        head.extend_from_slice(&buf[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            head.drain(..end + 4);
                            counts.requests.fetch_add(1, Ordering::SeqCst);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if tcp.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    (port_rx.recv().expect("the server started"), counts)
}
