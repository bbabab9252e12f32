//! The `hopper` binary: the built-in demo users, with Locust's command line.
//!
//! `hopper --demo --headless -u 100 -r 20 -t 20s` starts the demo target on 127.0.0.1 and
//! load tests it; `-H URL` points the same demo users at a copy of the demo target elsewhere
//! (see `hopper-demo-target`). Your own load tests are programs of their own that depend on
//! the `hopper` crate (see `examples/`).

fn main() {
    hopper::demo::program().main()
}
