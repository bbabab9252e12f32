//! One ZeroMQ payload: `msgpack([type, data, node_id])`, Locust's `rpc.protocol.Message`.

use rmpv::Value;

use super::codec::{decode_value, encode_value};
use super::fields::describe;
use super::{WireError, MAX_FRAME_BYTES};

/// The message types of Locust 2.47 (§6.3 of the reference). Custom types are any other string.
pub mod kind {
    /// W→M: the worker's version (or `-1`), at connect and after each stop.
    pub const CLIENT_READY: &str = "client_ready";
    /// M→W: `{"index": n}`, the answer to `client_ready`.
    pub const ACK: &str = "ack";
    /// W→M every second with the worker's state and usage; M→W nil as the reply.
    pub const HEARTBEAT: &str = "heartbeat";
    /// M→W: the users this worker should run now.
    pub const SPAWN: &str = "spawn";
    /// W→M nil: a spawn message arrived.
    pub const SPAWNING: &str = "spawning";
    /// W→M after applying a spawn; M→W once the whole ramp is done.
    pub const SPAWNING_COMPLETE: &str = "spawning_complete";
    /// W→M every 3 s: the statistics since the previous report.
    pub const STATS: &str = "stats";
    /// W→M: a task raised.
    pub const EXCEPTION: &str = "exception";
    /// W→M every 10 s: the worker's recent log lines.
    pub const LOGS: &str = "logs";
    /// M→W nil: stop all users.
    pub const STOP: &str = "stop";
    /// W→M nil: the worker stopped its users.
    pub const CLIENT_STOPPED: &str = "client_stopped";
    /// Both directions, nil: M→W "exit", W→M "I am exiting".
    pub const QUIT: &str = "quit";
    /// M→W nil: rebuild the connection (the master got a corrupt frame).
    pub const RECONNECT: &str = "reconnect";
    /// M→W: new attributes for a user class (the body of `POST /user`).
    pub const UPDATE_USER_CLASS: &str = "update_user_class";
    /// Both directions: locustfile distribution (`--worker -f -`).
    pub const LOCUSTFILE: &str = "locustfile";
}

/// One message between master and worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message type ([`kind`] or a custom one).
    pub kind: String,
    /// The payload; nil for the types that carry none.
    pub data: Value,
    /// Worker→master: the sender's client id. Master→worker: the recipient's client id.
    pub node_id: String,
}

impl Message {
    /// A message of type `kind`.
    pub fn new(kind: impl Into<String>, data: Value, node_id: impl Into<String>) -> Self {
        Message {
            kind: kind.into(),
            data,
            node_id: node_id.into(),
        }
    }

    /// The bytes Locust's `Message.serialize()` produces for the same message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.kind.len() + self.node_id.len());
        out.push(0x93);
        encode_value(&Value::from(self.kind.as_str()), &mut out);
        encode_value(&self.data, &mut out);
        encode_value(&Value::from(self.node_id.as_str()), &mut out);
        out
    }

    /// Reads one ZeroMQ payload. Never panics: frames over [`MAX_FRAME_BYTES`], bytes that are
    /// not exactly one msgpack value (see [`super::decode_value`]) and values that are not a
    /// 3-element array of string, anything, string are errors.
    ///
    /// Locust's special maps (datetimes, ObjectIds) inside `data` stay maps (see
    /// [`super::special_object`]).
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(WireError::FrameTooLarge { len: bytes.len() });
        }
        let value = decode_value(bytes)?;
        let Value::Array(items) = value else {
            return Err(WireError::NotAMessage(format!("got {}", describe(&value))));
        };
        let Ok::<[Value; 3], _>([kind, data, node_id]) = items.try_into() else {
            return Err(WireError::NotAMessage(
                "the array does not have 3 items".into(),
            ));
        };
        let text = |v: Value, what: &str| match v {
            Value::String(s) if s.is_str() => Ok(s.into_str().unwrap_or_default()),
            other => Err(WireError::NotAMessage(format!(
                "the {what} is {}, not a string",
                describe(&other)
            ))),
        };
        Ok(Message {
            kind: text(kind, "type")?,
            data,
            node_id: text(node_id, "node id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m = Message::new(
            "custom",
            Value::Map(vec![(
                Value::from(1u64),
                Value::Array(vec![Value::Nil, Value::F64(2.5)]),
            )]),
            "host_0123",
        );
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn rejects_wrong_shapes() {
        let err = |v: Value| {
            let mut b = Vec::new();
            super::super::encode_value(&v, &mut b);
            Message::decode(&b).unwrap_err().to_string()
        };
        assert_eq!(
            err(Value::from(3u64)),
            "not a Locust message (expected the array [type, data, node_id]): got 3"
        );
        assert_eq!(
            err(Value::Array(vec![Value::from("a"), Value::Nil])),
            "not a Locust message (expected the array [type, data, node_id]): the array does not have 3 items"
        );
        assert_eq!(
            err(Value::Array(vec![Value::from(1u64), Value::Nil, Value::from("id")])),
            "not a Locust message (expected the array [type, data, node_id]): the type is 1, not a string"
        );
        assert_eq!(
            err(Value::Array(vec![Value::from("stop"), Value::Nil, Value::Nil])),
            "not a Locust message (expected the array [type, data, node_id]): the node id is nil, not a string"
        );
    }

    #[test]
    fn rejects_oversized_frames_before_reading() {
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            Message::decode(&big),
            Err(WireError::FrameTooLarge {
                len: MAX_FRAME_BYTES + 1
            })
        );
    }
}
