//! The master's ROUTER against real peers on 127.0.0.1: this crate's DEALER (the worker
//! side), hand-made ZMTP byte streams (hostile ones included) and, where the Locust virtualenv
//! is there, pyzmq.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use zeromq::{DealerSocket, Socket, SocketOptions, SocketSend, ZmqMessage};

use super::router::{self, INCOMING_CAPACITY};
use super::zmtp::tests::ready_body;
use super::zmtp::{self, FLAG_COMMAND, FLAG_LONG};
use super::*;

const T: Duration = Duration::from_secs(5);

async fn master() -> MasterSocket {
    MasterSocket::bind("127.0.0.1", 0).await.expect("bind")
}

async fn worker(port: u16, identity: &str) -> WorkerSocket {
    WorkerSocket::connect("127.0.0.1", port, identity, T)
        .await
        .expect("connect")
}

async fn next(master: &mut MasterSocket) -> Incoming {
    timeout(T, master.recv())
        .await
        .expect("master received nothing in time")
        .expect("master socket closed")
}

async fn next_w(worker: &mut WorkerSocket) -> Bytes {
    timeout(T, worker.recv())
        .await
        .expect("worker received nothing in time")
        .expect("worker socket failed")
}

/// One worker says hello and gets an answer routed back to it.
async fn round_trip(master: &mut MasterSocket, identity: &str) {
    let mut w = worker(master.port(), identity).await;
    w.send(format!("hello from {identity}").into_bytes());
    let got = next(master).await;
    assert_eq!(got.identity, identity);
    assert_eq!(
        &got.payload[..],
        format!("hello from {identity}").as_bytes()
    );
    master
        .sender()
        .send(identity, format!("hi {identity}").into_bytes());
    assert_eq!(
        &next_w(&mut w).await[..],
        format!("hi {identity}").as_bytes()
    );
}

fn greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn ready_command(identity: &[u8]) -> Vec<u8> {
    command_frame(&ready_body(&[
        (b"Socket-Type", b"DEALER"),
        (b"Identity", identity),
    ]))
}

fn command_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = vec![FLAG_COMMAND | FLAG_LONG];
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

/// The worker sends `text`; the master must get exactly that from `identity` next, and its
/// answer must come back.
async fn exchange(master: &mut MasterSocket, w: &mut WorkerSocket, identity: &str, text: &str) {
    w.send(format!("{text} from {identity}").into_bytes());
    let got = next(master).await;
    assert_eq!(got.identity, identity);
    assert_eq!(
        String::from_utf8_lossy(&got.payload),
        format!("{text} from {identity}")
    );
    master
        .sender()
        .send(identity, format!("{text} to {identity}").into_bytes());
    assert_eq!(
        String::from_utf8_lossy(&next_w(w).await),
        format!("{text} to {identity}")
    );
}

/// Connects with `identity` as a reconnecting worker does: a refused attempt (the identity
/// still held by an old connection) is retried. Returns the socket, once the master has
/// heard from it, and how long that took.
async fn connect_until_accepted(
    master: &mut MasterSocket,
    identity: &str,
) -> (WorkerSocket, Duration) {
    let started = std::time::Instant::now();
    let end = tokio::time::Instant::now() + T;
    loop {
        assert!(tokio::time::Instant::now() < end, "{identity} never got in");
        let Ok(mut w) =
            WorkerSocket::connect("127.0.0.1", master.port(), identity, Duration::from_secs(1))
                .await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        w.send(b"probe".to_vec());
        tokio::select! {
            got = master.recv() => {
                let got = got.expect("master socket closed");
                assert_eq!(got.identity, identity);
                assert_eq!(&got.payload[..], b"probe");
                return (w, started.elapsed());
            }
            refused = w.recv() => {
                assert!(refused.is_err(), "{refused:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ = tokio::time::sleep_until(end) => {}
        }
    }
}

/// A hand-made ZeroMQ peer that has completed its handshake with `identity` and said
/// `hello` (which the master has received). Retried while the identity is still held.
async fn raw_peer(master: &mut MasterSocket, identity: &[u8]) -> TcpStream {
    let end = tokio::time::Instant::now() + T;
    loop {
        assert!(tokio::time::Instant::now() < end, "raw peer never got in");
        let mut stream = TcpStream::connect(("127.0.0.1", master.port()))
            .await
            .unwrap();
        let mut hello = greeting();
        hello.extend_from_slice(&ready_command(identity));
        hello.extend_from_slice(&[0, 5]);
        hello.extend_from_slice(b"hello");
        stream.write_all(&hello).await.unwrap();
        tokio::select! {
            got = master.recv() => {
                let got = got.expect("master socket closed");
                assert_eq!(&got.payload[..], b"hello");
                if !identity.is_empty() {
                    assert_eq!(got.identity.as_bytes(), identity);
                }
                return stream;
            }
            // Refused: the master closed the connection.
            _ = closed_by_peer(&mut stream, T) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads until the peer closes; true if it did within `within`.
async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_are_routed_by_identity() {
    let mut m = master().await;
    let ids = [
        "hostA_0123456789abcdef0123456789abcdef",
        "hostB_fedcba9876543210fedcba9876543210",
        "hostA_00000000000000000000000000000000",
    ];
    let mut workers = Vec::new();
    for id in ids {
        workers.push(worker(m.port(), id).await);
    }
    for round in 0..3 {
        for (w, id) in workers.iter().zip(ids) {
            w.send(format!("{round} from {id}").into_bytes());
        }
        let mut seen = Vec::new();
        for _ in ids {
            let got = next(&mut m).await;
            assert_eq!(
                &got.payload[..],
                format!("{round} from {}", got.identity).as_bytes()
            );
            seen.push(got.identity);
        }
        seen.sort();
        let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected);
        for id in ids {
            m.sender().send(id, format!("{round} to {id}").into_bytes());
        }
        for (w, id) in workers.iter_mut().zip(ids) {
            assert_eq!(&next_w(w).await[..], format!("{round} to {id}").as_bytes());
        }
    }
    // Split halves work from separate tasks, and large payloads pass the guard both ways.
    let (tx, mut rx) = workers.pop().unwrap().split();
    let big = vec![7u8; 3 * 1024 * 1024 + 17];
    let sender = tokio::spawn({
        let big = big.clone();
        async move { tx.send(big) }
    });
    sender.await.unwrap();
    let got = next(&mut m).await;
    assert_eq!(got.identity, ids[2]);
    assert_eq!(got.payload.len(), big.len());
    m.sender().send(ids[2], big.clone());
    let back = timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!(back.len(), big.len());
}

#[tokio::test]
async fn sending_to_an_unknown_identity_is_dropped_quietly() {
    let mut m = master().await;
    let sender = m.sender();
    sender.send("nobody_00000000000000000000000000000000", b"lost".to_vec());
    sender.send("", b"lost".to_vec());
    sender.send(&"x".repeat(300), b"lost".to_vec());
    round_trip(&mut m, "somebody_1").await;
    assert!(!sender.is_closed());
}

#[tokio::test]
async fn messages_that_are_not_one_frame_are_dropped() {
    let mut m = master().await;
    let mut options = SocketOptions::default();
    options.peer_identity("multi".parse().unwrap());
    let mut dealer = DealerSocket::with_options(options);
    dealer
        .connect(&format!("tcp://127.0.0.1:{}", m.port()))
        .await
        .unwrap();
    let mut two = ZmqMessage::from(b"a".to_vec());
    two.push_back(Bytes::from_static(b"b"));
    dealer.send(two).await.unwrap();
    dealer
        .send(ZmqMessage::from(b"one".to_vec()))
        .await
        .unwrap();
    let got = next(&mut m).await;
    assert_eq!(got.identity, "multi");
    assert_eq!(&got.payload[..], b"one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_do_not_stop_the_master() {
    let mut m = master().await;
    let port = m.port();
    let connect = || TcpStream::connect(("127.0.0.1", port));

    let mut garbage = connect().await.unwrap();
    garbage
        .write_all(&[0x13, 0x37, 0, 1, 2, 3, 0xff, 0xfe])
        .await
        .unwrap();
    let mut http = connect().await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // A truncated greeting, left open.
    let mut truncated = connect().await.unwrap();
    truncated.write_all(&greeting()[..10]).await.unwrap();
    // A frame header announcing 4 TiB: aborts a process serving the crate's ROUTER.
    let mut huge = connect().await.unwrap();
    huge.write_all(&greeting()).await.unwrap();
    let mut header = vec![FLAG_COMMAND | FLAG_LONG];
    header.extend_from_slice(&(1u64 << 42).to_be_bytes());
    huge.write_all(&header).await.unwrap();
    // A complete handshake, then a 64 MiB message frame.
    let mut oversized = connect().await.unwrap();
    oversized.write_all(&greeting()).await.unwrap();
    oversized.write_all(&ready_command(b"fat")).await.unwrap();
    let mut header = vec![FLAG_LONG];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    oversized.write_all(&header).await.unwrap();
    let _ = oversized.write_all(&vec![0u8; 100_000]).await;
    // Peers that connect and vanish.
    for _ in 0..20 {
        drop(connect().await.unwrap());
    }

    round_trip(&mut m, "after_hostiles").await;

    assert!(
        closed_by_peer(&mut garbage, T).await,
        "garbage peer left open"
    );
    assert!(closed_by_peer(&mut http, T).await, "HTTP peer left open");
    assert!(
        closed_by_peer(&mut huge, T).await,
        "huge-frame peer left open"
    );
    assert!(
        closed_by_peer(&mut oversized, T).await,
        "oversized peer left open"
    );
    // The truncated greeting is cut off once the handshake deadline passes.
    assert!(
        closed_by_peer(&mut truncated, HANDSHAKE_TIMEOUT + T).await,
        "truncated greeting left open"
    );
    round_trip(&mut m, "after_hostiles_2").await;
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let m = master().await;
    let err = MasterSocket::bind("127.0.0.1", m.port()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("tcp://127.0.0.1:{}", m.port())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_notices_the_master_going_away_and_a_rebuilt_socket_works() {
    let identity = "host_5d6c1f0e2a3b4c5d6e7f8091a2b3c4d5";
    let mut m = master().await;
    let port = m.port();
    let mut w = worker(port, identity).await;
    w.send(b"before".to_vec());
    assert_eq!(next(&mut m).await.identity, identity);

    drop(m);
    let err = timeout(T, w.recv())
        .await
        .expect("the worker did not notice the master leaving")
        .expect_err("the master is gone");
    assert!(
        matches!(err, TransportError::ConnectionLost { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // Later calls say the socket is closed; sends are dropped quietly.
    w.send(b"into the void".to_vec());
    assert!(matches!(w.recv().await, Err(TransportError::Closed { .. })));

    // Re-bind the same port (the old listener closes asynchronously).
    let mut m = {
        let end = std::time::Instant::now() + T;
        loop {
            match MasterSocket::bind("127.0.0.1", port).await {
                Ok(m) => break m,
                Err(e) if std::time::Instant::now() < end => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    round_trip(&mut m, identity).await;
}

#[tokio::test]
async fn closing_the_master_ends_incoming_and_frees_the_port() {
    let m = master().await;
    let port = m.port();
    let (sender, mut incoming) = m.split();
    sender.close();
    assert!(timeout(T, incoming.recv()).await.unwrap().is_none());
    assert!(sender.is_closed());
    let end = std::time::Instant::now() + T;
    while MasterSocket::bind("127.0.0.1", port).await.is_err() {
        assert!(std::time::Instant::now() < end, "port not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_a_live_identity_is_refused_and_the_first_is_undisturbed() {
    let identity = "dup_0123456789abcdef0123456789abcdef";
    let mut m = master().await;
    let mut first = worker(m.port(), identity).await;
    exchange(&mut m, &mut first, identity, "before").await;

    for attempt in 0..3 {
        // The crate's ROUTER would hand the identity to this socket and drop `first`; libzmq's,
        // and this one, keep `first`.
        match WorkerSocket::connect("127.0.0.1", m.port(), identity, Duration::from_secs(2)).await {
            // Cut off before its handshake completed.
            Err(e) => assert!(
                matches!(e, TransportError::Connect { .. }),
                "attempt {attempt}: {e:?}"
            ),
            // Or right after it: the connection is closed and nothing gets through.
            Ok(mut second) => {
                second.send(format!("duplicate {attempt}").into_bytes());
                let err = timeout(T, second.recv())
                    .await
                    .expect("the duplicate was not cut off")
                    .expect_err("the duplicate must not receive anything");
                assert!(
                    matches!(err, TransportError::ConnectionLost { .. }),
                    "attempt {attempt}: {err:?}"
                );
            }
        }
        // `first` still owns the identity: its messages reach the master (and the
        // duplicate's did not, or they would come first) and answers come back to it.
        exchange(&mut m, &mut first, identity, &format!("after {attempt}")).await;
    }

    // Same with a peer that sends its READY byte by byte.
    let mut slow = TcpStream::connect(("127.0.0.1", m.port())).await.unwrap();
    slow.write_all(&greeting()).await.unwrap();
    for byte in ready_command(identity.as_bytes()) {
        if slow.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(closed_by_peer(&mut slow, T).await, "duplicate left open");
    exchange(&mut m, &mut first, identity, "after the slow one").await;

    // Other identities are not affected.
    round_trip(&mut m, "dup_other").await;
    exchange(&mut m, &mut first, identity, "at the end").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_is_free_again_once_its_connection_ends() {
    let identity = "again_0123456789abcdef0123456789abcdef";
    let mut m = master().await;
    let mut first = worker(m.port(), identity).await;
    exchange(&mut m, &mut first, identity, "first").await;

    // The worker closes its socket; a new one with the same identity gets in (at once, or
    // after a retry if it beats the old connection's teardown) and works.
    drop(first);
    let (mut second, _) = connect_until_accepted(&mut m, identity).await;
    exchange(&mut m, &mut second, identity, "second").await;
    // Still routed a while later: the old connection's teardown did not take the
    // identity away from the new one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    exchange(&mut m, &mut second, identity, "second, later").await;

    // A peer that vanishes without a goodbye frees its identity too...
    drop(second);
    let (third, _) = connect_until_accepted(&mut m, identity).await;
    drop(third);
    let raw = raw_peer(&mut m, identity.as_bytes()).await;
    drop(raw);
    let (mut fourth, _) = connect_until_accepted(&mut m, identity).await;
    exchange(&mut m, &mut fourth, identity, "fourth").await;

    // ...and so does one the master cuts off for breaking the rules.
    drop(fourth);
    let (fifth, _) = connect_until_accepted(&mut m, identity).await;
    drop(fifth);
    let mut fat = raw_peer(&mut m, identity.as_bytes()).await;
    let mut header = vec![FLAG_LONG];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    let _ = fat.write_all(&header).await;
    assert!(
        closed_by_peer(&mut fat, T).await,
        "oversized peer left open"
    );
    let (mut sixth, _) = connect_until_accepted(&mut m, identity).await;
    exchange(&mut m, &mut sixth, identity, "sixth").await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_times_out_clearly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let err = WorkerSocket::connect("127.0.0.1", port, "w_1", Duration::from_millis(600))
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, TransportError::ConnectTimeout { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("tcp://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("within 0.6 s"), "{text}");
}

#[tokio::test]
async fn invalid_identity_is_refused() {
    let err = WorkerSocket::connect("127.0.0.1", 1, "", T)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::InvalidIdentity { .. }));
    let err = WorkerSocket::connect("127.0.0.1", 1, &"a".repeat(256), T)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::InvalidIdentity { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_peers_get_identities_of_their_own_and_answers() {
    let mut m = master().await;
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    for text in ["one", "two"] {
        let mut peer = RawPeer::connect(m.port(), b"").await;
        peer.send(text.as_bytes()).await;
        let got = next(&mut m).await;
        assert_eq!(&got.payload[..], text.as_bytes());
        // libzmq's form: a 0 byte first, which no announced identity has.
        assert!(got.identity.starts_with('\0'), "{:?}", got.identity);
        ids.push(got.identity);
        peers.push(peer);
    }
    assert_ne!(ids[0], ids[1]);
    for (peer, id) in peers.iter_mut().zip(&ids) {
        m.sender().send(id, format!("to {id:?}").into_bytes());
        assert_eq!(peer.message().await, format!("to {id:?}").as_bytes());
    }
}

/// A hand-made ZeroMQ peer that has read the master's greeting and READY.
struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    /// Handshakes as a DEALER with `identity` (empty: none), checking what the master sends.
    async fn connect(port: u16, identity: &[u8]) -> RawPeer {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut hello = greeting();
        hello.extend_from_slice(&ready_command(identity));
        stream.write_all(&hello).await.unwrap();
        let mut their = [0u8; 64];
        timeout(T, stream.read_exact(&mut their))
            .await
            .expect("no greeting")
            .unwrap();
        // ZMTP 3.1, NULL, as a libzmq ROUTER sends it.
        assert_eq!(their[0], 0xff);
        assert_eq!(their[9], 0x7f);
        assert_eq!(&their[10..12], &[3, 1]);
        assert_eq!(&their[12..32], b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let mut peer = RawPeer { stream };
        let (flags, body) = peer.frame().await;
        assert_eq!(flags & FLAG_COMMAND, FLAG_COMMAND);
        assert_eq!(
            body,
            ready_body(&[(b"Socket-Type", b"ROUTER"), (b"Identity", b"")])
        );
        peer
    }

    /// Sends a one-frame message.
    async fn send(&mut self, payload: &[u8]) {
        let mut frame = BytesMut::new();
        zmtp::put_frame(&mut frame, 0, payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn frame(&mut self) -> (u8, Vec<u8>) {
        timeout(T, read_frame(&mut self.stream))
            .await
            .expect("no frame in time")
            .expect("connection closed")
    }

    /// The next message, which must be one frame.
    async fn message(&mut self) -> Vec<u8> {
        let (flags, body) = self.frame().await;
        assert_eq!(flags & !FLAG_LONG, 0, "a one-frame message");
        body
    }
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let flags = stream.read_u8().await?;
    let len = if flags & FLAG_LONG != 0 {
        stream.read_u64().await?
    } else {
        u64::from(stream.read_u8().await?)
    };
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    Ok((flags, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_frames_its_messages_and_answers_pings_as_libzmq_does() {
    let mut m = master().await;
    let mut peer = RawPeer::connect(m.port(), b"framed").await;
    peer.send(b"hello").await;
    let got = next(&mut m).await;
    assert_eq!(
        (got.identity.as_str(), &got.payload[..]),
        ("framed", &b"hello"[..])
    );

    // `[payload]` alone reaches a DEALER, in the short form up to 255 bytes, else the long one.
    m.sender().send("framed", b"short".to_vec());
    assert_eq!(peer.frame().await, (0, b"short".to_vec()));
    let long = vec![b'x'; 300];
    m.sender().send("framed", long.clone());
    let mut frame = vec![FLAG_LONG];
    frame.extend_from_slice(&300u64.to_be_bytes());
    frame.extend_from_slice(&long);
    let mut got = vec![0u8; frame.len()];
    peer.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, frame);

    // PING (ZMTP 3.1 heartbeat): TTL, then a context the PONG echoes.
    let mut ping = vec![4u8];
    ping.extend_from_slice(b"PING");
    ping.extend_from_slice(&[0, 10]);
    ping.extend_from_slice(b"ctx-42");
    peer.stream.write_all(&command_frame(&ping)).await.unwrap();
    let mut pong = vec![4u8];
    pong.extend_from_slice(b"PONG");
    pong.extend_from_slice(b"ctx-42");
    assert_eq!(peer.frame().await, (FLAG_COMMAND, pong));

    // Other commands (a PONG, a second READY, an unknown one) and multi-frame messages are
    // passed over; the connection carries on.
    let mut stray = command_frame(b"\x04PONG");
    stray.extend_from_slice(&ready_command(b"other"));
    stray.extend_from_slice(&command_frame(b"\x07UNKNOWNdata"));
    stray.extend_from_slice(&[1, 1, b'a', 0, 1, b'b']);
    peer.stream.write_all(&stray).await.unwrap();
    peer.send(b"still here").await;
    let got = next(&mut m).await;
    assert_eq!(
        (got.identity.as_str(), &got.payload[..]),
        ("framed", &b"still here"[..])
    );
    m.sender().send("framed", b"and you".to_vec());
    assert_eq!(peer.message().await, b"and you");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_the_router_cannot_talk_to_are_refused() {
    let mut m = master().await;
    let mut plain = greeting();
    plain[12..32].copy_from_slice(b"PLAIN\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let mut zmtp2 = greeting();
    zmtp2[10] = 2;
    let with_ready = |body: Vec<u8>| {
        let mut bytes = greeting();
        bytes.extend_from_slice(&command_frame(&body));
        bytes
    };
    let cases = [
        ("the PLAIN mechanism", plain),
        ("ZMTP 2", zmtp2),
        (
            "a PUB socket",
            with_ready(ready_body(&[(b"Socket-Type", b"PUB"), (b"Identity", b"p")])),
        ),
        (
            "no Socket-Type",
            with_ready(ready_body(&[(b"Identity", b"p")])),
        ),
        ("an ERROR command", with_ready(b"\x05ERROR\x03bad".to_vec())),
        ("a message before READY", {
            let mut bytes = greeting();
            bytes.extend_from_slice(&[0, 1, b'x']);
            bytes
        }),
    ];
    for (what, bytes) in cases {
        let mut stream = TcpStream::connect(("127.0.0.1", m.port())).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        assert!(closed_by_peer(&mut stream, T).await, "{what}: left open");
    }
    round_trip(&mut m, "after_refusals").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_read_does_not_hold_up_the_others() {
    let mut m = master().await;
    let mut sleepy = RawPeer::connect(m.port(), b"sleepy").await;
    sleepy.send(b"here").await;
    assert_eq!(next(&mut m).await.identity, "sleepy");
    let mut awake = worker(m.port(), "awake").await;

    // Far more than the socket buffers, the connection's buffer and its queue hold together:
    // every send returns at once, the surplus is dropped, and the other worker is served
    // meanwhile.
    let sends = router::OUTGOING_QUEUE * 4;
    let payload = vec![b's'; 16 * 1024];
    for i in 0..sends {
        m.sender().send("sleepy", payload.clone());
        if i % 1000 == 0 {
            exchange(&mut m, &mut awake, "awake", &format!("during {i}")).await;
        }
    }
    exchange(&mut m, &mut awake, "awake", "after").await;

    // The sleeper wakes: it gets whole messages up to what was kept, still connected.
    let mut received = 0;
    while let Ok(frame) = timeout(Duration::from_secs(1), read_frame(&mut sleepy.stream)).await {
        let (flags, body) = frame.expect("connection kept");
        assert_eq!((flags, body.len()), (FLAG_LONG, payload.len()));
        received += 1;
    }
    assert!(
        (router::OUTGOING_QUEUE..sends).contains(&received),
        "{received} of {sends} messages arrived"
    );
    sleepy.send(b"awake now").await;
    assert_eq!(&next(&mut m).await.payload[..], b"awake now");
    m.sender().send("sleepy", b"welcome back".to_vec());
    assert_eq!(sleepy.message().await, b"welcome back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_that_stops_reading_pauses_its_peers_and_loses_nothing() {
    let mut m = master().await;
    let filler = worker(m.port(), "filler").await;
    let flood = INCOMING_CAPACITY + 1000;
    for i in 0..flood {
        filler.send(i.to_string().into_bytes());
    }
    let end = tokio::time::Instant::now() + T;
    while m.queued() < INCOMING_CAPACITY {
        assert!(
            tokio::time::Instant::now() < end,
            "the channel never filled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another peer's handshake is not held up by the stall.
    let mut late = RawPeer::connect(m.port(), b"late").await;
    late.send(b"late hello").await;
    // Once the master reads again, everything arrives: the filler's messages in order, the
    // late peer's somewhere among them.
    let mut filler_next = 0;
    let mut late_seen = false;
    for _ in 0..=flood {
        let got = next(&mut m).await;
        if got.identity == "late" {
            assert_eq!(&got.payload[..], b"late hello");
            late_seen = true;
        } else {
            assert_eq!(got.identity, "filler");
            assert_eq!(&got.payload[..], filler_next.to_string().as_bytes());
            filler_next += 1;
        }
    }
    assert!(late_seen && filler_next == flood);
}

/// The Python interpreter of the Locust virtualenv (which has pyzmq, i.e. libzmq):
/// `HOPPER_LOCUST`'s, as the interop tests find it, else the workspace's `.venv`.
fn venv_python() -> std::path::PathBuf {
    let locust = std::env::var_os("HOPPER_LOCUST")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/locust")
        });
    let python = locust.with_file_name("python3");
    assert!(
        python.is_file(),
        "pyzmq is not installed: {} does not exist. Run `bash scripts/test`, which installs \
         Locust (and pyzmq) into .venv, or point HOPPER_LOCUST at a locust in a virtualenv.",
        python.display()
    );
    python
}

const PYZMQ_PEERS: &str = r#"
import sys, time, zmq
from zmq.utils.monitor import recv_monitor_message

port = int(sys.argv[1])
ctx = zmq.Context()

def dealer(identity=None, heartbeats=False):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        s.setsockopt(zmq.IDENTITY, identity)
    if heartbeats:
        s.setsockopt(zmq.HEARTBEAT_IVL, 100)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 1000)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s

def ask(s, text):
    s.send(text)
    if not s.poll(5000):
        sys.exit(f"no answer to {text!r}")
    frames = s.recv_multipart()
    if frames != [b"re: " + text]:
        sys.exit(f"answer to {text!r}: {frames!r}")

a = dealer(b"pyzmq_a", heartbeats=True)
monitor = a.get_monitor_socket(zmq.EVENT_DISCONNECTED)
ask(a, b"hello")
# libzmq drops a connection whose PINGs go unanswered for a second.
time.sleep(2.5)
if monitor.poll(0):
    sys.exit(f"the heartbeating connection dropped: {recv_monitor_message(monitor)}")
ask(a, b"after heartbeats")

b = dealer(b"pyzmq_a")
b.send(b"duplicate")
time.sleep(0.5)
ask(a, b"after the duplicate")
b.close()

c = dealer()
ask(c, b"anonymous")
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzmq_dealers_talk_to_the_master() {
    let python = venv_python();
    let m = master().await;
    let port = m.port();
    let (sender, mut incoming) = m.split();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let echo = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(got) = incoming.recv().await {
                let mut answer = b"re: ".to_vec();
                answer.extend_from_slice(&got.payload);
                sender.send(&got.identity, answer);
                seen.lock().unwrap().push(got);
            }
        }
    });
    let output = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(python)
            .arg("-c")
            .arg(PYZMQ_PEERS)
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python");
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > end {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "pyzmq peers failed ({}): {stdout}{stderr}",
        output.status
    );
    echo.abort();
    let seen: Vec<(String, String)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|got| {
            let payload = String::from_utf8_lossy(&got.payload).into_owned();
            let identity = if got.identity.starts_with('\0') {
                "<generated>".to_string()
            } else {
                got.identity.clone()
            };
            (identity, payload)
        })
        .collect();
    // The duplicate's message never arrived: the first connection kept the identity.
    let expected: Vec<(String, String)> = [
        ("pyzmq_a", "hello"),
        ("pyzmq_a", "after heartbeats"),
        ("pyzmq_a", "after the duplicate"),
        ("<generated>", "anonymous"),
    ]
    .iter()
    .map(|(i, p)| (i.to_string(), p.to_string()))
    .collect();
    assert_eq!(seen, expected);
}
