//! `hopper-demo-target`: runs Hopper's demo HTTP app as a standalone server.
//!
//! ```text
//! hopper-demo-target [--bind 127.0.0.1:8080] [--threads N]
//! ```
//!
//! It serves the routes described in `hopper::demo_target` until Ctrl-C or
//! SIGTERM. Once listening it prints exactly one line to stdout,
//! `listening on http://ADDR`, with the real port, so a script can bind port 0
//! and read the port back. Request counters are at `GET /__counters`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use hopper::demo_target::DemoTarget;

const USAGE: &str = "\
usage: hopper-demo-target [--bind ADDR] [--threads N]

Runs Hopper's demo HTTP app until Ctrl-C or SIGTERM.

options:
  --bind ADDR     address to listen on (default 127.0.0.1:8080; port 0 picks a free port)
  --threads N     tokio worker threads (default: number of CPUs)
  -h, --help      print this help";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    bind: SocketAddr,
    threads: Option<usize>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Options),
    Help,
}

/// Parses the arguments after the program name. Both `--flag value` and
/// `--flag=value` are accepted; `Err` carries the message to print.
fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut opts = Options {
        bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
        threads: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--bind" => {
                let v = value("--bind")?;
                opts.bind = v.parse().map_err(|_| {
                    format!("invalid --bind address {v:?} (expected IP:PORT, e.g. 127.0.0.1:8080)")
                })?;
            }
            "--threads" => {
                let v = value("--threads")?;
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => opts.threads = Some(n),
                    _ => {
                        return Err(format!(
                            "invalid --threads value {v:?} (expected a positive integer)"
                        ))
                    }
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Run(opts))
}

/// Resolves on Ctrl-C, or on SIGTERM where that exists (so `kill` and
/// container runtimes stop the server cleanly too).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => opts,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("hopper-demo-target: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = opts.threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hopper-demo-target: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    runtime.block_on(async {
        let target = match DemoTarget::start(opts.bind).await {
            Ok(target) => target,
            Err(e) => {
                eprintln!("hopper-demo-target: cannot listen on {}: {e}", opts.bind);
                return ExitCode::FAILURE;
            }
        };
        // Exactly one line on stdout, flushed, for scripts waiting on the port.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on http://{}", target.addr());
        let _ = stdout.flush();
        drop(stdout);

        shutdown_signal().await;
        target.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&[]),
            Ok(Command::Run(Options {
                bind: "127.0.0.1:8080".parse().unwrap(),
                threads: None,
            }))
        );
    }

    #[test]
    fn bind_and_threads_both_forms() {
        let expected = Ok(Command::Run(Options {
            bind: "0.0.0.0:0".parse().unwrap(),
            threads: Some(3),
        }));
        assert_eq!(parse(&["--bind", "0.0.0.0:0", "--threads", "3"]), expected);
        assert_eq!(parse(&["--bind=0.0.0.0:0", "--threads=3"]), expected);
        assert_eq!(
            parse(&["--bind", "[::1]:9000"]),
            Ok(Command::Run(Options {
                bind: "[::1]:9000".parse().unwrap(),
                threads: None,
            }))
        );
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        assert!(parse(&["--port", "80"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(parse(&["extra"]).unwrap_err().contains("unknown argument"));
        assert!(parse(&["--bind"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bind", "localhost"])
            .unwrap_err()
            .contains("invalid --bind"));
        assert!(parse(&["--threads", "0"])
            .unwrap_err()
            .contains("invalid --threads"));
        assert!(parse(&["--threads=x"])
            .unwrap_err()
            .contains("invalid --threads"));
    }
}
