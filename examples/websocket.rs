//! A WebSocket user: connects in `on_start`, exchanges messages in its tasks, closes in
//! `on_stop`. Each exchange is recorded as a request of type `WS`.
//!
//! The Locust equivalent, with the `websocket-client` package (`import websocket`):
//!
//! ```python
//! import time
//! import websocket
//! from locust import User, task, between
//!
//! class EchoUser(User):
//!     wait_time = between(0.5, 1)
//!
//!     def on_start(self):
//!         url = self.host.replace("http", "ws", 1) + "/ws/echo"
//!         with self.environment.events.request.measure("WS", "connect /ws/echo"):
//!             self.ws = websocket.create_connection(url, timeout=2)
//!
//!     @task(3)
//!     def echo(self):
//!         text = f"hello from {id(self)}"
//!         with self.environment.events.request.measure("WS", "echo") as meta:
//!             self.ws.send(text)
//!             reply = self.ws.recv()
//!             meta["response_length"] = len(reply)
//!             if reply != text:
//!                 raise Exception(f"echo answered {reply!r}")
//!
//!     @task(1)
//!     def send_then_receive(self):
//!         self.ws.send("ping")
//!         with self.environment.events.request.measure("WS", "receive") as meta:
//!             meta["response_length"] = len(self.ws.recv())
//!
//!     def on_stop(self):
//!         self.ws.close()
//! ```
//!
//! Run it against the demo target (`cargo run --release --bin hopper-demo-target` in another
//! terminal, which listens on 127.0.0.1:8080 and echoes on `/ws/echo`):
//!
//! ```text
//! cargo run --example websocket -- -H http://127.0.0.1:8080 --headless -u 5 -r 5 -t 10s
//! ```

use hopper::prelude::*;
use hopper::ws::WebSocket;
use std::time::Duration;

/// How long an exchange waits for the server's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Each user's own socket, opened in `on_start`.
#[derive(Default)]
struct EchoUser {
    ws: Option<WebSocket>,
}

/// `on_start` (and after a failure): connect to `/ws/echo` on the user's host, recorded as
/// `WS connect /ws/echo`. A failed connect is recorded and the task ends; the next task
/// tries again.
async fn connect(user: &mut User<EchoUser>) -> TaskResult {
    let ws = WebSocket::connect_from(&user.client, "/ws/echo")
        .name("connect /ws/echo")
        .await;
    user.ws = ws.ok();
    Ok(())
}

/// The open socket, or `None` after connecting again (a closed socket is not reused).
async fn open_socket(user: &mut User<EchoUser>) -> Result<Option<&mut WebSocket>, TaskError> {
    if !user.ws.as_ref().is_some_and(WebSocket::is_open) {
        connect(user).await?;
        return Ok(None);
    }
    Ok(user.ws.as_mut())
}

/// Send and reply as one request, `WS echo`: timed from the send to the reply, with the
/// reply's length. A reply that is not the echo is a failure of the task.
async fn echo(user: &mut User<EchoUser>) -> TaskResult {
    let text = format!("hello from user {}", user.id());
    let Some(ws) = open_socket(user).await? else {
        return Ok(());
    };
    // A failure (timeout, closed socket) is already recorded; nothing more to do.
    if let Ok(reply) = ws.exchange(text.as_str(), REPLY_TIMEOUT).name("echo").await {
        if reply.to_text().ok() != Some(text.as_str()) {
            return fail(format!("echo answered {reply:?}"));
        }
    }
    Ok(())
}

/// A send on its own is not recorded; the receive that follows is, as `WS receive`, timed
/// from the start of the receive.
async fn send_then_receive(user: &mut User<EchoUser>) -> TaskResult {
    let Some(ws) = open_socket(user).await? else {
        return Ok(());
    };
    if ws.send_text("ping").await.is_ok() {
        let _ = ws.receive(REPLY_TIMEOUT).name("receive").await;
    }
    Ok(())
}

/// `on_stop`: the closing handshake (not recorded).
async fn close(user: &mut User<EchoUser>) -> TaskResult {
    if let Some(mut ws) = user.ws.take() {
        ws.close().await;
    }
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("EchoUser", EchoUser::default)
                .wait_time(between(0.5, 1.0))
                .on_start(hook!(connect))
                .on_stop(hook!(close))
                .task(task!(echo, 3))
                .task(task!(send_then_receive, 1)),
        )
        .main()
}
