//! ZMTP 3.x (ZeroMQ's wire protocol, RFC 23 and 37) as far as a ROUTER with the NULL mechanism
//! needs it: the greeting, READY, PING/PONG and message frames. No I/O here: [`Decoder`] takes
//! bytes as they arrive and yields whole events, checking every limit on a frame's header
//! before its body is waited for, so a hostile length costs nothing.
//!
//! A frame is one flags byte (MORE 0x01, LONG 0x02, COMMAND 0x04), a length (one byte, or
//! eight big-endian bytes when LONG) and the body. A command body is a one-byte name length,
//! the name, then the command's data; READY's data are properties (one-byte name length, name,
//! four-byte big-endian value length, value), names case-insensitive.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{MAX_COMMAND_SIZE, MAX_FRAMES_PER_MESSAGE, MAX_MESSAGE_SIZE};

pub(super) const FLAG_MORE: u8 = 0x01;
pub(super) const FLAG_LONG: u8 = 0x02;
pub(super) const FLAG_COMMAND: u8 = 0x04;

/// Length of a ZMTP 3 greeting.
pub(super) const GREETING_LEN: usize = 64;

/// Longest routing identity ZeroMQ allows.
pub(super) const MAX_IDENTITY_LEN: usize = 255;

/// Longest PING context (ZMTP 3.1).
const MAX_PING_CONTEXT: usize = 16;

/// Socket types a ROUTER talks to (libzmq's compatibility rule).
const ROUTER_PEERS: [&[u8]; 3] = [b"DEALER", b"REQ", b"ROUTER"];

/// Our greeting: ZMTP 3.1 (so PING is understood), the NULL mechanism, as-server 0 (NULL has
/// no roles; libzmq sends 0 too).
pub(super) fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// Our READY command frame as a socket of `socket_type`. Like libzmq's ROUTER it carries an
/// empty `Identity` property (a ROUTER has no routing identity of its own).
pub(super) fn ready_frame(socket_type: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.push(5);
    body.extend_from_slice(b"READY");
    for (name, value) in [(&b"Socket-Type"[..], socket_type), (b"Identity", b"")] {
        body.push(name.len() as u8);
        body.extend_from_slice(name);
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut frame = BytesMut::with_capacity(body.len() + 9);
    put_frame(&mut frame, FLAG_COMMAND, &body);
    frame.to_vec()
}

/// Appends one frame (short or long form as its length needs).
pub(super) fn put_frame(out: &mut BytesMut, flags: u8, body: &[u8]) {
    if body.len() <= 255 {
        out.reserve(2 + body.len());
        out.put_u8(flags);
        out.put_u8(body.len() as u8);
    } else {
        out.reserve(9 + body.len());
        out.put_u8(flags | FLAG_LONG);
        out.put_u64(body.len() as u64);
    }
    out.extend_from_slice(body);
}

/// Appends the PONG that answers a PING with `context`.
pub(super) fn put_pong(out: &mut BytesMut, context: &[u8]) {
    let mut body = [0u8; 5 + MAX_PING_CONTEXT];
    body[0] = 4;
    body[1..5].copy_from_slice(b"PONG");
    let len = context.len().min(MAX_PING_CONTEXT);
    body[5..5 + len].copy_from_slice(&context[..len]);
    put_frame(out, FLAG_COMMAND, &body[..5 + len]);
}

/// What the peer sent, one whole unit at a time.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// Its greeting is complete and acceptable (ZMTP ≥ 3.0, NULL mechanism).
    Greeting,
    /// Its READY command: the socket type (one a ROUTER talks to) and the routing identity
    /// (empty: none).
    Ready { socket_type: Bytes, identity: Bytes },
    /// A message of one frame.
    Message(Bytes),
    /// A message of several frames (not kept: Locust's peers never send them).
    MultiFrame { frames: usize },
    /// A PING command: answer with a PONG carrying `context`.
    Ping { context: Bytes },
    /// Any other command after the handshake (PONG, SUBSCRIBE, ...), named.
    Command { name: Bytes },
}

/// Why a connection must be closed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProtocolError {
    /// Before the handshake completed (scanners, HTTP clients, other protocols), rather than a
    /// ZeroMQ peer breaking the rules afterwards.
    pub handshake: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Ready,
    Traffic,
}

/// Incremental decoder of what a peer sends to a ROUTER.
#[derive(Debug)]
pub(super) struct Decoder {
    stage: Stage,
    /// Frames and bytes of the message in progress (its earlier frames had MORE).
    message_frames: usize,
    message_bytes: u64,
    /// How many bytes the buffer must hold before the next call can make progress.
    want: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            stage: Stage::Greeting,
            message_frames: 0,
            message_bytes: 0,
            want: 1,
        }
    }
}

impl Decoder {
    /// Whether the greeting and READY have been received.
    #[cfg(test)]
    pub(super) fn handshake_done(&self) -> bool {
        self.stage == Stage::Traffic
    }

    /// After [`decode`](Self::decode) returned `Ok(None)`: how many bytes the buffer must hold
    /// for it to make progress. Never more than a limit allows (a frame announced larger was
    /// refused), so reserving up to this only follows what the peer has sent.
    pub(super) fn want(&self) -> usize {
        self.want
    }

    fn reject(&self, reason: String) -> ProtocolError {
        ProtocolError {
            handshake: self.stage != Stage::Traffic,
            reason,
        }
    }

    /// The next event from the front of `buf` (consumed), or `None` until more bytes arrive.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ProtocolError> {
        loop {
            if self.stage == Stage::Greeting {
                let seen = &buf[..buf.len().min(GREETING_LEN)];
                check_greeting(seen).map_err(|reason| self.reject(reason))?;
                if seen.len() < GREETING_LEN {
                    self.want = GREETING_LEN;
                    return Ok(None);
                }
                buf.advance(GREETING_LEN);
                self.stage = Stage::Ready;
                return Ok(Some(Event::Greeting));
            }
            let Some(&flags) = buf.first() else {
                self.want = 1;
                return Ok(None);
            };
            let command = flags & FLAG_COMMAND != 0;
            if command && flags & FLAG_MORE != 0 {
                return Err(self.reject("a command frame with the MORE flag".into()));
            }
            if !command && self.stage == Stage::Ready {
                return Err(self.reject("a message frame before the READY command".into()));
            }
            let header = if flags & FLAG_LONG != 0 { 9 } else { 2 };
            if buf.len() < header {
                self.want = header;
                return Ok(None);
            }
            let len = if header == 9 {
                u64::from_be_bytes(buf[1..9].try_into().unwrap_or_default())
            } else {
                u64::from(buf[1])
            };
            self.check_header(command, len)?;
            // Within the limits checked above, so it fits in usize.
            let total = header + len as usize;
            if buf.len() < total {
                self.want = total;
                return Ok(None);
            }
            buf.advance(header);
            let body = buf.split_to(len as usize).freeze();
            if command {
                if self.stage == Stage::Ready {
                    let (socket_type, identity) =
                        parse_ready(&body).map_err(|reason| self.reject(reason))?;
                    self.stage = Stage::Traffic;
                    return Ok(Some(Event::Ready {
                        socket_type,
                        identity,
                    }));
                }
                return Ok(Some(command_event(body)));
            }
            self.message_frames += 1;
            self.message_bytes += len;
            if flags & FLAG_MORE != 0 {
                continue;
            }
            let frames = std::mem::take(&mut self.message_frames);
            self.message_bytes = 0;
            return Ok(Some(if frames == 1 {
                Event::Message(body)
            } else {
                Event::MultiFrame { frames }
            }));
        }
    }

    /// The limits, checked on a frame's header (before its body is read).
    fn check_header(&self, command: bool, len: u64) -> Result<(), ProtocolError> {
        if command {
            if len > MAX_COMMAND_SIZE {
                return Err(self.reject(format!("a {len}-byte command frame")));
            }
            return Ok(());
        }
        if self.message_bytes.saturating_add(len) > MAX_MESSAGE_SIZE {
            return Err(self.reject(format!(
                "a message larger than {} MiB (a frame of {len} bytes)",
                MAX_MESSAGE_SIZE / (1024 * 1024)
            )));
        }
        if self.message_frames + 1 > MAX_FRAMES_PER_MESSAGE {
            return Err(self.reject(format!(
                "a message of more than {MAX_FRAMES_PER_MESSAGE} frames"
            )));
        }
        Ok(())
    }
}

/// Checks the part of a peer's greeting received so far: signature, version ≥ 3, NULL.
fn check_greeting(seen: &[u8]) -> Result<(), String> {
    let bad = || "not a ZeroMQ peer (bad greeting)".to_string();
    if seen.first().is_some_and(|&b| b != 0xff) || seen.get(9).is_some_and(|&b| b & 0x01 == 0) {
        return Err(bad());
    }
    if let Some(&major) = seen.get(10) {
        if major < 3 {
            return Err(format!(
                "ZMTP version {major} is too old (3.0 or newer needed)"
            ));
        }
    }
    if seen.len() >= 32 {
        let mechanism = &seen[12..32];
        let name_len = mechanism
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(mechanism.len());
        if &mechanism[..name_len] != b"NULL" || mechanism[name_len..].iter().any(|&b| b != 0) {
            return Err(format!(
                "the {:?} security mechanism (only NULL is supported)",
                String::from_utf8_lossy(&mechanism[..name_len])
            ));
        }
    }
    Ok(())
}

/// Splits a command body into its name and data.
fn command_name(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = body.split_first()?;
    (rest.len() >= usize::from(len)).then(|| rest.split_at(usize::from(len)))
}

/// A command after the handshake: PING is answered, the rest only named.
fn command_event(body: Bytes) -> Event {
    if let Some((name, data)) = command_name(&body) {
        // PING: a two-byte TTL, then up to 16 bytes of context for the PONG.
        if name == b"PING" && data.len() >= 2 && data.len() - 2 <= MAX_PING_CONTEXT {
            let start = body.len() - data.len() + 2;
            return Event::Ping {
                context: body.slice(start..),
            };
        }
        let end = 1 + name.len();
        return Event::Command {
            name: body.slice(1..end),
        };
    }
    Event::Command { name: Bytes::new() }
}

/// The socket type and routing identity (empty: none) of a peer's first command, which must
/// be a well-formed READY from a socket a ROUTER talks to.
fn parse_ready(body: &Bytes) -> Result<(Bytes, Bytes), String> {
    let malformed = || "a malformed READY command".to_string();
    let (name, mut properties) = command_name(body).ok_or_else(malformed)?;
    if name == b"ERROR" {
        let reason = command_name(properties).map(|(r, _)| r).unwrap_or_default();
        return Err(format!(
            "the peer gave up: {:?}",
            String::from_utf8_lossy(reason)
        ));
    }
    if name != b"READY" {
        return Err(format!(
            "a {:?} command instead of READY",
            String::from_utf8_lossy(name)
        ));
    }
    let mut socket_type: Option<&[u8]> = None;
    let mut identity: Option<&[u8]> = None;
    while let Some((&name_len, rest)) = properties.split_first() {
        if rest.len() < usize::from(name_len) + 4 {
            return Err(malformed());
        }
        let (name, rest) = rest.split_at(usize::from(name_len));
        let (value_len, rest) = rest.split_at(4);
        let value_len =
            u32::from_be_bytes([value_len[0], value_len[1], value_len[2], value_len[3]]);
        let value_len = usize::try_from(value_len).unwrap_or(usize::MAX);
        if rest.len() < value_len {
            return Err(malformed());
        }
        let (value, rest) = rest.split_at(value_len);
        properties = rest;
        let slot = if name.eq_ignore_ascii_case(b"Identity") {
            if value.len() > MAX_IDENTITY_LEN {
                return Err(format!(
                    "an identity of {} bytes (255 at most)",
                    value.len()
                ));
            }
            &mut identity
        } else if name.eq_ignore_ascii_case(b"Socket-Type") {
            &mut socket_type
        } else {
            continue;
        };
        if slot.is_some() {
            // Which one would count? Legitimate peers send each once.
            return Err(format!(
                "a READY command with two {:?} properties",
                String::from_utf8_lossy(name)
            ));
        }
        *slot = Some(value);
    }
    let socket_type =
        socket_type.ok_or_else(|| "a READY command without a Socket-Type".to_string())?;
    if !ROUTER_PEERS.contains(&socket_type) {
        return Err(format!(
            "a {:?} socket (a ROUTER talks to DEALER, REQ and ROUTER sockets)",
            String::from_utf8_lossy(socket_type)
        ));
    }
    Ok((
        body.slice_ref(socket_type),
        identity.map(|id| body.slice_ref(id)).unwrap_or_default(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn greeting_of(major: u8, mechanism: &[u8]) -> Vec<u8> {
        let mut g = greeting().to_vec();
        g[10] = major;
        g[12..32].fill(0);
        g[12..12 + mechanism.len()].copy_from_slice(mechanism);
        g
    }

    /// The body of a READY command with these properties (the transport's tests build
    /// peers' handshakes with it too).
    pub(crate) fn ready_body(properties: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = vec![5u8];
        body.extend_from_slice(b"READY");
        for (name, value) in properties {
            body.push(name.len() as u8);
            body.extend_from_slice(name);
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
        body
    }

    fn command(body: &[u8]) -> Vec<u8> {
        let mut frame = BytesMut::new();
        put_frame(&mut frame, FLAG_COMMAND, body);
        frame.to_vec()
    }

    /// Every event in `bytes`, fed one byte at a time as a slow peer sends them.
    fn events(bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for &b in bytes {
            buf.extend_from_slice(&[b]);
            while let Some(event) = decoder.decode(&mut buf)? {
                events.push(event);
            }
            assert!(decoder.want() > buf.len(), "waits for more than it has");
        }
        Ok(events)
    }

    fn ready_of(body: &[u8]) -> Result<(Bytes, Bytes), ProtocolError> {
        let mut bytes = greeting_of(3, b"NULL");
        bytes.extend_from_slice(&command(body));
        match events(&bytes)?.pop() {
            Some(Event::Ready {
                socket_type,
                identity,
            }) => Ok((socket_type, identity)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_real_handshake_and_messages_decode() {
        let mut bytes = greeting_of(3, b"NULL");
        bytes.extend_from_slice(&command(&ready_body(&[
            (b"Socket-Type", b"DEALER"),
            (b"Identity", b"w1"),
        ])));
        bytes.extend_from_slice(&[0, 3, b'a', b'b', b'c']);
        bytes.extend_from_slice(&[FLAG_MORE, 1, b'x', FLAG_MORE | FLAG_LONG]);
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&[b'y', 0, 0]);
        bytes.extend_from_slice(&command(b"\x04PING\x00\x0aabc"));
        bytes.extend_from_slice(&command(b"\x04PONG"));
        assert_eq!(
            events(&bytes).unwrap(),
            vec![
                Event::Greeting,
                Event::Ready {
                    socket_type: Bytes::from_static(b"DEALER"),
                    identity: Bytes::from_static(b"w1")
                },
                Event::Message(Bytes::from_static(b"abc")),
                Event::MultiFrame { frames: 3 },
                Event::Ping {
                    context: Bytes::from_static(b"abc")
                },
                Event::Command {
                    name: Bytes::from_static(b"PONG")
                },
            ]
        );
    }

    #[test]
    fn the_ready_command_gives_the_identity() {
        let id = |props: &[(&[u8], &[u8])]| ready_of(&ready_body(props)).map(|(_, id)| id);
        assert_eq!(
            id(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"host_1")]).unwrap(),
            &b"host_1"[..]
        );
        // Names are case-insensitive; other properties are skipped.
        assert_eq!(
            id(&[
                (b"identity", b"host_2"),
                (b"socket-type", b"DEALER"),
                (b"X-Other", b"")
            ])
            .unwrap(),
            &b"host_2"[..]
        );
        assert!(id(&[(b"Socket-Type", b"DEALER")]).unwrap().is_empty());
        assert!(id(&[(b"Socket-Type", b"REQ"), (b"IDENTITY", b"")])
            .unwrap()
            .is_empty());
        assert_eq!(
            id(&[(b"Socket-Type", b"ROUTER"), (b"Identity", &[b'x'; 255])]).unwrap(),
            vec![b'x'; 255]
        );

        for (what, body) in [
            (
                "two identities",
                ready_body(&[
                    (b"Socket-Type", b"DEALER"),
                    (b"Identity", b"a"),
                    (b"IDENTITY", b"b"),
                ]),
            ),
            (
                "a 256-byte identity",
                ready_body(&[(b"Socket-Type", b"DEALER"), (b"Identity", &[b'x'; 256])]),
            ),
            ("no socket type", ready_body(&[(b"Identity", b"a")])),
            ("a SUB socket", ready_body(&[(b"Socket-Type", b"SUB")])),
            ("not READY", b"\x05HELLO".to_vec()),
            ("ERROR", b"\x05ERROR\x04nope".to_vec()),
            ("empty", Vec::new()),
            ("truncated name", b"\x05REA".to_vec()),
            ("truncated property", {
                let mut body = ready_body(&[(b"Socket-Type", b"DEALER")]);
                body.pop();
                body
            }),
            ("a stray byte", {
                let mut body = ready_body(&[(b"Socket-Type", b"DEALER")]);
                body.push(1);
                body
            }),
        ] {
            let err = ready_of(&body).expect_err(what);
            assert!(err.handshake, "{what}");
        }
    }

    #[test]
    fn bad_greetings_are_refused_at_the_first_wrong_byte() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1"[..]);
        assert!(decoder.decode(&mut buf).unwrap_err().handshake);
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&greeting_of(2, b"NULL")[..11]);
        assert!(decoder
            .decode(&mut buf)
            .unwrap_err()
            .reason
            .contains("too old"));
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&greeting_of(3, b"CURVE")[..32]);
        assert!(decoder
            .decode(&mut buf)
            .unwrap_err()
            .reason
            .contains("CURVE"));
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&greeting_of(3, b"NULLX")[..]);
        assert!(decoder.decode(&mut buf).is_err());
    }

    #[test]
    fn limits_are_checked_on_the_header() {
        let handshake = || {
            let mut bytes = greeting_of(3, b"NULL");
            bytes.extend_from_slice(&command(&ready_body(&[(b"Socket-Type", b"DEALER")])));
            let mut decoder = Decoder::default();
            let mut buf = BytesMut::from(&bytes[..]);
            while decoder.decode(&mut buf).unwrap().is_some() {}
            assert!(decoder.handshake_done());
            decoder
        };
        let header = |flags: u8, len: u64| {
            let mut h = BytesMut::new();
            h.put_u8(flags | FLAG_LONG);
            h.put_u64(len);
            h
        };

        // A 4 TiB frame is refused with nothing of it read or reserved.
        let mut decoder = handshake();
        let err = decoder.decode(&mut header(0, 1 << 42)).unwrap_err();
        assert!(!err.handshake && err.reason.contains("larger than 32 MiB"));
        // So is a command beyond 64 KiB, even before the handshake.
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&greeting_of(3, b"NULL")[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Event::Greeting));
        let err = decoder
            .decode(&mut header(FLAG_COMMAND, 1 << 42))
            .unwrap_err();
        assert!(err.handshake && err.reason.contains("command"));
        let mut decoder = handshake();
        assert!(decoder
            .decode(&mut BytesMut::from(&[FLAG_COMMAND | FLAG_MORE, 0][..]))
            .is_err());

        // Two frames of one message adding up to 33 MiB.
        let mut decoder = handshake();
        let mut buf = header(FLAG_MORE, 20 << 20);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(decoder.want(), 9 + (20 << 20));
        buf.resize(9 + (20 << 20), 0);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
        let err = decoder.decode(&mut header(0, 13 << 20)).unwrap_err();
        assert!(err.reason.contains("larger than 32 MiB"), "{err:?}");

        // 65 frames in one message.
        let mut decoder = handshake();
        let mut buf = BytesMut::new();
        for _ in 0..MAX_FRAMES_PER_MESSAGE {
            buf.extend_from_slice(&[FLAG_MORE, 0]);
        }
        buf.extend_from_slice(&[0, 0]);
        let err = decoder.decode(&mut buf).unwrap_err();
        assert!(err.reason.contains("frames"), "{err:?}");
    }

    #[test]
    fn pongs_echo_the_context_and_frames_pick_their_form() {
        let mut out = BytesMut::new();
        put_pong(&mut out, b"ctx");
        assert_eq!(&out[..], b"\x04\x08\x04PONGctx");
        let mut out = BytesMut::new();
        put_frame(&mut out, 0, &[7u8; 255]);
        assert_eq!(&out[..2], &[0, 255]);
        let mut out = BytesMut::new();
        put_frame(&mut out, FLAG_MORE, &[7u8; 256]);
        assert_eq!(&out[..9], &[FLAG_MORE | FLAG_LONG, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(out.len(), 9 + 256);
        let ready = ready_frame(b"ROUTER");
        assert_eq!(ready[0], FLAG_COMMAND);
        assert_eq!(
            &ready[2..],
            &ready_body(&[(b"Socket-Type", b"ROUTER"), (b"Identity", b"")])[..]
        );
    }
}
