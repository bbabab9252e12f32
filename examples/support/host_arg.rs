//! Taking a non-HTTP `-H/--host` (`tcp://…`, `redis://…`) out of the command line, shared by
//! the custom-protocol examples (`tcp_lines`, `redis_kv`).
//!
//! Hopper's runner checks every host as an HTTP base URL before it starts, because its users
//! carry an HTTP client; an address of another scheme is refused there ("not a usable base
//! URL"). An example whose users speak another protocol therefore takes its address out of
//! the arguments itself and hands it to its users, and Hopper runs without a host (it logs
//! that the user class has none, which only matters for HTTP requests).

use std::ffi::OsString;

/// Removes every `-H X`, `-HX`, `--host X` and `--host=X` from `args` (`args[0]` is the
/// program) and returns the value of the last one, which is the one that counts, as on
/// Hopper's own command line. Arguments after `--` are left alone, and so is a trailing
/// `-H` without a value (Hopper then reports the missing value).
pub fn take_host(args: &mut Vec<OsString>) -> Result<Option<String>, String> {
    let mut host = None;
    let mut kept = Vec::with_capacity(args.len());
    let mut rest = std::mem::take(args).into_iter();
    if let Some(program) = rest.next() {
        kept.push(program);
    }
    while let Some(arg) = rest.next() {
        let text = arg.to_str().unwrap_or_default();
        if text == "--" {
            kept.push(arg);
            kept.extend(rest.by_ref());
            break;
        }
        let value = if text == "-H" || text == "--host" {
            match rest.next() {
                Some(v) => v,
                None => {
                    kept.push(arg);
                    break;
                }
            }
        } else if let Some(v) = text.strip_prefix("--host=") {
            OsString::from(v)
        } else if let Some(v) = text.strip_prefix("-H").filter(|v| !v.is_empty()) {
            OsString::from(v)
        } else {
            kept.push(arg);
            continue;
        };
        match value.into_string() {
            Ok(v) => host = Some(v),
            Err(v) => return Err(format!("-H/--host is not valid UTF-8: {v:?}")),
        }
    }
    *args = kept;
    Ok(host)
}
