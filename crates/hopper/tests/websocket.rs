//! WebSocket users: the example program against the demo target's echo route (Hopper's WS
//! rows must match what the server counted), and every way a socket can fail recorded as a
//! failure with a clear text, never a panic or a hang.

mod common;

use common::*;
use hopper::ws::{Message, WebSocket};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bound for any single client operation in these tests.
const BOUND: Duration = Duration::from_secs(10);

#[test]
fn example_counts_match_the_echo_server() {
    let dir = TempDir::new("websocket");
    let target = Target::start();
    let out = run_in(
        &example_bin("websocket"),
        dir.path(),
        &[
            "-H",
            target.url(),
            "--headless",
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "3s",
        ],
    );
    let counters = target.finish();
    out.assert_code(0);
    let summary = out.summary();
    assert_eq!(
        summary.names(),
        ["WS connect /ws/echo", "WS echo", "WS receive"],
        "{}",
        out.dump()
    );
    let connects = summary.row("WS", "connect /ws/echo").unwrap();
    let echo = summary.row("WS", "echo").unwrap();
    let receive = summary.row("WS", "receive").unwrap();
    assert_eq!(connects.reqs, 5, "{}", out.dump());
    assert!(echo.reqs > 0 && receive.reqs > 0, "{}", out.dump());
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
    // Every upgrade the server accepted is a recorded connect, and every message it echoed
    // is a recorded echo or receive.
    assert_eq!(
        counters.get("GET", "/ws/echo", 101),
        connects.reqs,
        "{}",
        out.dump()
    );
    assert_eq!(
        counters.get("WS", "/ws/echo", 200),
        echo.reqs + receive.reqs,
        "{}",
        out.dump()
    );
    assert_eq!(
        counters.total(),
        summary.aggregated.reqs,
        "{:?}\n{}",
        counters.snapshot(),
        out.dump()
    );
}

/// Runs `f` on a current-thread runtime, bounded, then waits until its records are in the
/// global statistics.
fn run_client<F: Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the client steps finished in time");
    });
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
}

/// (requests, failures) recorded for this name and type.
fn counts(name: &str, request_type: &str) -> (u64, u64) {
    let stats = hopper_stats::global().lock();
    stats
        .entries
        .get(&(name.to_string(), request_type.to_string()))
        .map_or((0, 0), |e| (e.num_requests, e.num_failures))
}

#[test]
fn exchanges_receives_and_request_types_are_recorded() {
    let target = Target::start();
    let url = format!("{}/ws/echo", target.url().replacen("http", "ws", 1));
    run_client(async {
        let mut ws = WebSocket::connect(url.as_str())
            .request_type("SOCKET")
            .await
            .expect("connect");
        let reply = ws
            .exchange("hello", BOUND)
            .name("hello")
            .await
            .expect("echo");
        assert_eq!(reply, Message::text("hello"));
        ws.send_binary(vec![1, 2, 3]).await.expect("send");
        let reply = ws
            .receive(BOUND)
            .name("bytes")
            .request_type("BIN")
            .await
            .expect("receive");
        assert_eq!(reply.into_data().as_ref(), [1, 2, 3]);
        ws.close().await;
        assert!(!ws.is_open());
    });
    // The connect is named by its path, and its type is the socket's for later requests.
    assert_eq!(counts("/ws/echo", "SOCKET"), (1, 0));
    assert_eq!(counts("hello", "SOCKET"), (1, 0));
    assert_eq!(counts("bytes", "BIN"), (1, 0));
    let stats = hopper_stats::global().lock();
    let hello = &stats.entries[&("hello".to_string(), "SOCKET".to_string())];
    assert_eq!(hello.total_content_length, 5);
    drop(stats);
    let counters = target.finish();
    assert_eq!(counters.get("GET", "/ws/echo", 101), 1);
    assert_eq!(counters.get("WS", "/ws/echo", 200), 2);
}

#[test]
fn connecting_to_a_closed_port_is_a_recorded_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    run_client(async move {
        let err = WebSocket::connect(format!("ws://127.0.0.1:{port}/ws"))
            .name("refused")
            .await
            .unwrap_err();
        assert_eq!(
            err.text(),
            "ConnectionRefusedError(111, 'Connection refused')"
        );
    });
    assert_eq!(counts("refused", "WS"), (1, 1));
    assert_eq!(
        error_texts("refused"),
        ["ConnectionRefusedError(111, 'Connection refused')"]
    );
}

#[test]
fn refused_upgrades_and_tls_failures_are_recorded() {
    let target = Target::start();
    let base = target.url().to_string();
    run_client(async move {
        // Not a WebSocket route: the server answers the upgrade with a plain response.
        let err = WebSocket::connect(format!("{base}/fast"))
            .name("not ws")
            .await
            .unwrap_err();
        assert_eq!(
            err.text(),
            "WebSocketBadStatusException('Handshake status 200 OK')"
        );
        let err = WebSocket::connect(format!("{base}/nowhere"))
            .name("missing")
            .await
            .unwrap_err();
        assert_eq!(
            err.text(),
            "WebSocketBadStatusException('Handshake status 404 Not Found')"
        );
        // wss:// to a server that does not speak TLS.
        let err = WebSocket::connect(format!("{}/ws/echo", base.replacen("http", "wss", 1)))
            .name("tls")
            .await
            .unwrap_err();
        assert!(err.text().starts_with("SSLError("), "{err}");
        // Not a WebSocket URL at all.
        let err = WebSocket::connect("ftp://127.0.0.1/x")
            .name("bad url")
            .await
            .unwrap_err();
        assert!(
            err.text().starts_with("WebSocketAddressException("),
            "{err}"
        );
    });
    for name in ["not ws", "missing", "tls", "bad url"] {
        assert_eq!(counts(name, "WS"), (1, 1), "{name}");
    }
}

#[test]
fn the_server_closing_mid_exchange_is_a_recorded_failure_not_a_hang() {
    let target = Target::start();
    let url = format!("{}/ws/close", target.url().replacen("http", "ws", 1));
    run_client(async move {
        let mut ws = WebSocket::connect(url).await.expect("connect");
        let err = ws
            .exchange("hello", BOUND)
            .name("closed")
            .await
            .unwrap_err();
        assert_eq!(
            err.text(),
            "WebSocketConnectionClosedException('the server closed the connection: 1011 \
             internal error, reason: closing after the first message')"
        );
        assert!(!ws.is_open());
        // A closed socket fails at once, however long the timeout.
        let started = Instant::now();
        let err = ws
            .receive(Duration::from_secs(60))
            .name("after close")
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            err.text(),
            "WebSocketConnectionClosedException('socket is already closed.')"
        );
        assert!(ws.send_text("more").await.is_err());
    });
    assert_eq!(counts("closed", "WS"), (1, 1));
    assert_eq!(counts("after close", "WS"), (1, 1));
    assert_eq!(target.finish().get("GET", "/ws/close", 101), 1);
}

#[test]
fn a_receive_timeout_is_a_recorded_failure_and_the_socket_stays_usable() {
    let target = Target::start();
    let url = format!("{}/ws/echo", target.url().replacen("http", "ws", 1));
    run_client(async move {
        let mut ws = WebSocket::connect(url).await.expect("connect");
        let started = Instant::now();
        let err = ws
            .receive(Duration::from_millis(200))
            .name("silence")
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(err.text(), "WebSocketTimeoutException('timed out')");
        assert!(ws.is_open());
        let reply = ws.exchange("still there?", BOUND).await.expect("echo");
        assert_eq!(reply.to_text().unwrap(), "still there?");
        ws.close().await;
    });
    assert_eq!(counts("silence", "WS"), (1, 1));
    assert_eq!(counts("exchange", "WS"), (1, 0));
    let stats = hopper_stats::global().lock();
    let silence = &stats.entries[&("silence".to_string(), "WS".to_string())];
    assert!(silence.max_response_time >= 200.0);
}

/// A server that accepts the upgrade, then sends a frame with a reserved opcode.
async fn protocol_violator() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bad", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request);
        let key = text
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        let accept = hopper::ws::server::accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let _ = stream.write_all(response.as_bytes()).await;
        // FIN, opcode 0xB (reserved), no payload.
        let _ = stream.write_all(&[0x8B, 0x00]).await;
        // Hold the connection until the client gives up on it.
        let _ = stream.read(&mut buf).await;
    });
    (url, server)
}

#[test]
fn protocol_errors_and_lost_connections_are_recorded() {
    run_client(async {
        let (url, server) = protocol_violator().await;
        let mut ws = WebSocket::connect(url).await.expect("connect");
        let err = ws.receive(BOUND).name("protocol").await.unwrap_err();
        assert!(
            err.text().starts_with("WebSocketProtocolException("),
            "{err}"
        );
        assert!(!ws.is_open());
        drop(ws);
        let _ = tokio::time::timeout(BOUND, server).await;

        // A server that goes away while the socket is open.
        let target = hopper::demo_target::DemoTarget::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let url = format!("{}/ws/echo", target.base_url().replacen("http", "ws", 1));
        let mut ws = WebSocket::connect(url).await.expect("connect");
        // Dropping the demo target aborts every connection and tells sockets to close.
        drop(target);
        let err = ws.receive(BOUND).name("gone").await.unwrap_err();
        assert!(
            err.text()
                .starts_with("WebSocketConnectionClosedException("),
            "{err}"
        );
    });
    assert_eq!(counts("protocol", "WS"), (1, 1));
    assert_eq!(counts("gone", "WS"), (1, 1));
}
