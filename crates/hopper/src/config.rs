//! Locust-compatible configuration layering for Hopper's clap command line.
//!
//! Locust (through `configargparse`) lets every long option come from several
//! places. Highest precedence first:
//!
//! 1. the command line;
//! 2. `LOCUST_*` environment variables (see [`ENV_VARS`]; not every option
//!    has one, and a few have odd names such as `LOCUST_MODE_MASTER`);
//! 3. the file named by `--config FILE`;
//! 4. `./pyproject.toml`, section `[tool.locust]`;
//! 5. `./locust.conf`;
//! 6. `~/.locust.conf`;
//! 7. the options' built-in defaults.
//!
//! [`layered_args`] resolves layers 2–6 per option and turns the winners
//! into ordinary argument tokens, spliced in front of the user's own options.
//! One clap parse of the result then yields the final values, so clap's
//! validation, value parsers and error messages apply to configured values
//! exactly as they do to typed ones.
//!
//! Config files use Locust's formats. Files whose name ends in `.toml` are
//! TOML: the `[tool.locust]` table is read, scalars become strings (booleans
//! as `True`/`False`, floats as Python prints them) and arrays become lists.
//! Every other file uses configargparse's INI-like syntax, one setting a line:
//!
//! ```text
//! # comment            ; comment        [section] and --- lines are ignored
//! users = 10           spawn-rate: 2    run-time 1h30m    --host = "http://x"
//! headless             (a bare key sets a flag; yes/no, on/off, 1/0 work too)
//! tags = [a, b]        (a JSON array, or bare comma-separated items)
//! ```
//!
//! Keys are long option names, with or without the leading `--`, or any
//! unambiguous abbreviation of one (argparse's rule, which Locust's config
//! files inherit). As in
//! Locust, a value for an option that the command line (or a higher layer)
//! also sets is ignored without being validated, and a flag set to `false`
//! in a higher layer hides a `true` from a lower one.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// Long option name → environment variable, for every Locust option that
/// reads one. Options missing here (`config`, `list`, `json`, `json-file`,
/// `enable-rebalancing`, `show-task-ratio`, `show-task-ratio-json`,
/// `equal-weights`, `profile`, `help`, `version`) have no variable.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("locustfile", "LOCUST_LOCUSTFILE"),
    ("host", "LOCUST_HOST"),
    ("users", "LOCUST_USERS"),
    ("spawn-rate", "LOCUST_SPAWN_RATE"),
    ("run-time", "LOCUST_RUN_TIME"),
    ("config-users", "LOCUST_CONFIG_USERS"),
    ("web-host", "LOCUST_WEB_HOST"),
    ("web-host-display-name", "LOCUST_WEB_HOST_DISPLAY_NAME"),
    ("web-port", "LOCUST_WEB_PORT"),
    ("headless", "LOCUST_HEADLESS"),
    ("autostart", "LOCUST_AUTOSTART"),
    ("autoquit", "LOCUST_AUTOQUIT"),
    ("headful", "LOCUST_HEADFUL"),
    ("web-auth", "LOCUST_WEB_AUTH"),
    ("web-login", "LOCUST_WEB_LOGIN"),
    ("tls-cert", "LOCUST_TLS_CERT"),
    ("tls-key", "LOCUST_TLS_KEY"),
    ("class-picker", "LOCUST_USERCLASS_PICKER"),
    ("build-path", "LOCUST_BUILD_PATH"),
    ("legacy-ui", "LOCUST_LEGACY_UI"),
    ("master", "LOCUST_MODE_MASTER"),
    ("master-bind-host", "LOCUST_MASTER_BIND_HOST"),
    ("master-bind-port", "LOCUST_MASTER_BIND_PORT"),
    ("expect-workers", "LOCUST_EXPECT_WORKERS"),
    ("expect-workers-max-wait", "LOCUST_EXPECT_WORKERS_MAX_WAIT"),
    ("worker", "LOCUST_MODE_WORKER"),
    ("processes", "LOCUST_PROCESSES"),
    ("master-host", "LOCUST_MASTER_NODE_HOST"),
    ("master-port", "LOCUST_MASTER_NODE_PORT"),
    ("web-base-path", "LOCUST_WEB_BASE_PATH"),
    ("tags", "LOCUST_TAGS"),
    ("exclude-tags", "LOCUST_EXCLUDE_TAGS"),
    ("csv", "LOCUST_CSV"),
    ("csv-full-history", "LOCUST_CSV_FULL_HISTORY"),
    ("print-stats", "LOCUST_PRINT_STATS"),
    ("only-summary", "LOCUST_ONLY_SUMMARY"),
    ("reset-stats", "LOCUST_RESET_STATS"),
    ("html", "LOCUST_HTML"),
    ("skip-log-setup", "LOCUST_SKIP_LOG_SETUP"),
    ("loglevel", "LOCUST_LOGLEVEL"),
    ("logfile", "LOCUST_LOGFILE"),
    ("exit-code-on-error", "LOCUST_EXIT_CODE_ON_ERROR"),
    ("stop-timeout", "LOCUST_STOP_TIMEOUT"),
    ("otel", "LOCUST_ENABLE_OPENTELEMETRY"),
];

/// Whitespace-separated User class names used when the command line names
/// none. Unlike the option variables it is not list syntax: `"A B"` is two.
pub const USER_CLASSES_ENV: &str = "LOCUST_USER_CLASSES";

/// The environment variable that sets the option with this long name, if any.
pub fn env_var_for(long: &str) -> Option<&'static str> {
    ENV_VARS
        .iter()
        .find(|(name, _)| *name == long)
        .map(|(_, var)| *var)
}

/// Where a configured value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a config file.
    File {
        /// The file, as found by default or named by `--config`.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `LOCUST_HEADLESS`.
        var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// A config file or environment variable that cannot be used.
///
/// Locust reports all of these as argument errors (exit code 2). Every
/// variant but [`ConfigError::Read`] says where the problem is in `origin`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file named with `--config`, or a default one that exists,
    /// could not be read.
    Read {
        /// The file, as found by default or named by `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// A `.toml` config file is not valid TOML.
    Toml {
        /// Where the problem is.
        origin: Origin,
        /// The TOML parser's description of the problem.
        message: String,
    },
    /// A line of an INI-style config file has no recognisable key.
    MalformedLine {
        /// Where the problem is.
        origin: Origin,
        /// The offending line, trimmed.
        text: String,
    },
    /// A config file sets an option the command does not have.
    UnknownOption {
        /// Where the problem is.
        origin: Origin,
        /// The key as written.
        key: String,
        /// The closest long option name, if any is close.
        suggestion: Option<String>,
    },
    /// A config file key abbreviates more than one long option name.
    AmbiguousOption {
        /// Where the problem is.
        origin: Origin,
        /// The key as written.
        key: String,
        /// The long names it could abbreviate.
        candidates: Vec<String>,
    },
    /// A flag was given a word other than true/false/yes/no/on/off/1/0.
    InvalidFlag {
        /// Where the problem is.
        origin: Origin,
        /// The flag's long name.
        option: String,
        /// The word given.
        value: String,
    },
    /// A list was given for an option that takes a single value.
    UnexpectedList {
        /// Where the problem is.
        origin: Origin,
        /// The option's long name.
        option: String,
    },
    /// A TOML value with no string form, such as a table.
    UnsupportedValue {
        /// Where the problem is.
        origin: Origin,
        /// The option's long name.
        option: String,
        /// What kind of TOML value it was given.
        what: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "could not read config file {}: {source}", path.display())
            }
            ConfigError::Toml { origin, message } => {
                write!(f, "{origin}: invalid TOML: {message}")
            }
            ConfigError::MalformedLine { origin, text } => write!(
                f,
                "{origin}: cannot understand '{text}'; expected 'option = value'"
            ),
            ConfigError::UnknownOption {
                origin,
                key,
                suggestion,
            } => {
                write!(f, "{origin}: unknown option '{key}'")?;
                match suggestion {
                    // A short option is a different mistake from a typo:
                    // say what config files expect instead.
                    Some(long) if !key.starts_with("--") && key.starts_with('-') => write!(
                        f,
                        " (config files take long option names: did you mean '{long}'?)"
                    ),
                    Some(long) => write!(f, " (did you mean '{long}'?)"),
                    None => Ok(()),
                }
            }
            ConfigError::AmbiguousOption {
                origin,
                key,
                candidates,
            } => write!(
                f,
                "{origin}: ambiguous option '{key}' could be any of '{}'",
                candidates.join("', '")
            ),
            ConfigError::InvalidFlag {
                origin,
                option,
                value,
            } => write!(
                f,
                "{origin}: '{option}' expects true/false/yes/no/on/off/1/0, got '{value}'"
            ),
            ConfigError::UnexpectedList { origin, option } => {
                write!(f, "{origin}: '{option}' takes a single value, not a list")
            }
            ConfigError::UnsupportedValue {
                origin,
                option,
                what,
            } => write!(f, "{origin}: '{option}' cannot be set to a TOML {what}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Builds the argument vector for `cmd` from config files, environment and
/// the real command line, with Locust's precedence.
///
/// The result is `argv[0]`, then the command line's leading positional
/// arguments (if any), then one token group per option resolved from the
/// lower layers, then the rest of the command line unchanged. Options the
/// command line sets are left out of the resolved groups, so list options
/// do not accumulate and a flag on the command line is not repeated. Groups
/// go before the first option token so that a list group (`--tags a b`) is
/// always followed by another option or by nothing, never by a positional
/// that clap would take as one more list item.
///
/// When the command line names no positional arguments, the words of
/// `LOCUST_USER_CLASSES` are placed right after `argv[0]`.
///
/// `--help` and `--version` return `argv` untouched: Locust does not read
/// config files to print help, and a broken file should not hide it.
pub fn layered_args(
    cmd: &Command,
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    cwd: &Path,
) -> Result<Vec<OsString>, ConfigError> {
    let mut cmd = cmd.clone();
    cmd.build();
    let specs = option_specs(&cmd);

    // Parse the real command line once, tolerating errors, to learn which
    // options it sets and where --config points. Errors resurface when the
    // caller parses the final vector, with clap's usual wording.
    let probe = match cmd.clone().ignore_errors(true).try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(_) => return Ok(argv.to_vec()),
    };
    let on_command_line = |id: &str| probe.value_source(id) == Some(ValueSource::CommandLine);

    // Layers in increasing precedence; later ones win per option.
    let mut layers: Vec<Layer> = Vec::new();
    if let Some(home) = home {
        layers.extend(load_default_file(&home.join(".locust.conf"), &specs)?);
    }
    layers.extend(load_default_file(&cwd.join("locust.conf"), &specs)?);
    layers.extend(load_default_file(&cwd.join("pyproject.toml"), &specs)?);
    if let Some(named) = config_file_arg(&cmd, &probe) {
        let shown = expand_home(&named, home);
        let text =
            std::fs::read_to_string(cwd.join(&shown)).map_err(|source| ConfigError::Read {
                path: shown.clone(),
                source,
            })?;
        layers.push(parse_config_text(&text, &shown, &specs)?);
    }
    layers.push(env_layer(&specs, env));

    let mut resolved = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        if on_command_line(&spec.id) {
            continue;
        }
        let winner = layers
            .iter()
            .rev()
            .filter_map(|layer| layer.get(&index))
            // An empty value for a list option counts as absent, as in
            // configargparse, so it does not hide a lower layer's list.
            .find(|setting| !(spec.kind == Kind::Multi && setting.value.is_empty_text()));
        if let Some(setting) = winner {
            resolved.extend(tokens_for(spec, setting)?);
        }
    }

    let mut out = Vec::with_capacity(argv.len() + resolved.len() + 1);
    out.push(
        argv.first()
            .cloned()
            .unwrap_or_else(|| OsString::from(cmd.get_name())),
    );
    let cli = argv.get(1..).unwrap_or_default();

    let has_positional_slot = cmd.get_positionals().next().is_some();
    let cli_has_positionals = cmd
        .get_positionals()
        .any(|arg| on_command_line(arg.get_id().as_str()));
    if has_positional_slot && !cli_has_positionals {
        if let Some(classes) = env(USER_CLASSES_ENV) {
            out.extend(classes.split_whitespace().map(OsString::from));
        }
    }

    let first_option = cli
        .iter()
        .position(|arg| arg.as_encoded_bytes().starts_with(b"-") && arg != "-")
        .unwrap_or(cli.len());
    out.extend_from_slice(&cli[..first_option]);
    out.extend(resolved);
    out.extend_from_slice(&cli[first_option..]);
    Ok(out)
}

/// How an option consumes values, which decides the tokens emitted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `SetTrue`/`SetFalse`: present or absent.
    Flag,
    /// `Count`: present some number of times.
    Count,
    /// One value per occurrence, last occurrence wins.
    Single,
    /// Several values in one occurrence (`--tags a b`).
    Multi,
    /// One value per occurrence, occurrences accumulate (`--x a --x b`).
    Repeated,
}

/// A configurable option of the command: one with a long name.
struct OptionSpec {
    id: String,
    long: String,
    aliases: Vec<String>,
    short: Option<char>,
    kind: Kind,
}

impl OptionSpec {
    /// The long name and its aliases.
    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.long.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

fn option_specs(cmd: &Command) -> Vec<OptionSpec> {
    cmd.get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let max_values = arg.get_num_args().map_or(1, |range| range.max_values());
            let kind = match arg.get_action() {
                ArgAction::SetTrue | ArgAction::SetFalse => Kind::Flag,
                ArgAction::Count => Kind::Count,
                ArgAction::Set | ArgAction::Append if max_values > 1 => Kind::Multi,
                ArgAction::Append => Kind::Repeated,
                ArgAction::Set => Kind::Single,
                // Help and version are actions, not settings.
                _ => return None,
            };
            Some(OptionSpec {
                id: arg.get_id().as_str().to_owned(),
                long: long.to_owned(),
                aliases: arg
                    .get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                short: arg.get_short(),
                kind,
            })
        })
        .collect()
}

/// The `--config` value given on the command line, if the command has one.
fn config_file_arg(cmd: &Command, probe: &ArgMatches) -> Option<OsString> {
    let id = cmd
        .get_arguments()
        .find(|arg| arg.get_long() == Some("config"))?
        .get_id()
        .as_str();
    if probe.value_source(id) != Some(ValueSource::CommandLine) {
        return None;
    }
    probe.get_raw(id)?.next_back().map(OsStr::to_owned)
}

/// Expands a leading `~` component like Python's `os.path.expanduser`.
fn expand_home(path: &OsStr, home: Option<&Path>) -> PathBuf {
    let path = Path::new(path);
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

/// A configured value before it is checked against its option.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    List(Vec<String>),
}

impl Value {
    fn is_empty_text(&self) -> bool {
        matches!(self, Value::Text(text) if text.is_empty())
    }
}

#[derive(Debug)]
struct Setting {
    value: Value,
    origin: Origin,
}

/// One source's settings, keyed by index into the option table.
type Layer = HashMap<usize, Setting>;

/// Reads a default config file; a missing one is simply not a layer.
fn load_default_file(path: &Path, specs: &[OptionSpec]) -> Result<Option<Layer>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_config_text(&text, path, specs).map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses a config file in the format its name implies, as Locust's
/// `LocustConfigParser` does: TOML for `*.toml`, INI-like for anything else.
fn parse_config_text(text: &str, path: &Path, specs: &[OptionSpec]) -> Result<Layer, ConfigError> {
    if path.to_string_lossy().ends_with(".toml") {
        parse_toml(text, path, specs)
    } else {
        parse_ini(text, path, specs)
    }
}

/// Finds the option a config key names: its long name or an alias, with or
/// without leading dashes, or else an unambiguous prefix of one.
///
/// Prefixes work because configargparse hands unknown keys to argparse as
/// `--key=value`, and argparse accepts abbreviated long options, so a
/// Locust config saying `user = 3` sets `users`. (Locust then mishandles
/// abbreviated flags and lists; here they behave like the full name.)
fn lookup_key(
    key: &str,
    path: &Path,
    line: usize,
    specs: &[OptionSpec],
) -> Result<usize, ConfigError> {
    let origin = || Origin::File {
        path: path.to_owned(),
        line,
    };
    let name = key.trim_matches('-');
    if let Some(index) = specs
        .iter()
        .position(|spec| spec.names().any(|n| n == name))
    {
        return Ok(index);
    }
    let candidates: Vec<usize> = specs
        .iter()
        .enumerate()
        .filter(|(_, spec)| !name.is_empty() && spec.names().any(|n| n.starts_with(name)))
        .map(|(index, _)| index)
        .collect();
    match candidates[..] {
        [index] => Ok(index),
        [] => Err(ConfigError::UnknownOption {
            origin: origin(),
            key: key.to_owned(),
            suggestion: suggest(key, specs),
        }),
        _ => Err(ConfigError::AmbiguousOption {
            origin: origin(),
            key: key.to_owned(),
            candidates: candidates.iter().map(|&i| specs[i].long.clone()).collect(),
        }),
    }
}

/// The long name a mistyped key most likely meant: the option whose short
/// name it is, or the long name within a small edit distance.
fn suggest(key: &str, specs: &[OptionSpec]) -> Option<String> {
    if let Some(short) = key.strip_prefix('-').filter(|rest| !rest.starts_with('-')) {
        let mut chars = short.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(spec) = specs.iter().find(|spec| spec.short == Some(c)) {
                return Some(spec.long.clone());
            }
        }
    }
    let name = key.trim_start_matches('-');
    specs
        .iter()
        .map(|spec| (edit_distance(name, &spec.long), &spec.long))
        .filter(|(distance, long)| *distance <= 1 + long.chars().count() / 4)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, long)| long.clone())
}

/// Optimal string alignment distance: Levenshtein plus adjacent swaps, so
/// `usres` is one edit from `users`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

fn parse_ini(text: &str, path: &Path, specs: &[OptionSpec]) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new();
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let (key, value) = match parse_ini_line(raw) {
            IniLine::Blank => continue,
            IniLine::Setting { key, value } => (key, value),
            IniLine::Malformed => {
                return Err(ConfigError::MalformedLine {
                    origin: Origin::File {
                        path: path.to_owned(),
                        line,
                    },
                    text: raw.trim().to_owned(),
                })
            }
        };
        let index = lookup_key(key, path, line, specs)?;
        let value = if value.starts_with('[') && value.ends_with(']') {
            Value::List(parse_list_literal(&value))
        } else {
            Value::Text(value)
        };
        let origin = Origin::File {
            path: path.to_owned(),
            line,
        };
        // A later line for the same option replaces an earlier one.
        layer.insert(index, Setting { value, origin });
    }
    Ok(layer)
}

#[derive(Debug, PartialEq, Eq)]
enum IniLine<'a> {
    Blank,
    Setting { key: &'a str, value: String },
    Malformed,
}

/// Splits one line the way configargparse's `DefaultConfigFileParser` does
/// (its regex, written out): key, separator (`=`, `:` or whitespace),
/// value with one pair of matching quotes removed, and an optional trailing
/// comment that must be preceded by whitespace (`a#b` is a value).
fn parse_ini_line(raw: &str) -> IniLine<'_> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with(['#', ';', '[']) || line.starts_with("---") {
        return IniLine::Blank;
    }
    let key_end = line
        .find(|c: char| matches!(c, ':' | '=' | ';' | '#') || c.is_whitespace())
        .unwrap_or(line.len());
    if key_end == 0 {
        return IniLine::Malformed;
    }
    let (key, rest) = line.split_at(key_end);
    if rest.is_empty() {
        // A bare key: "headless" means "headless = true".
        return IniLine::Setting {
            key,
            value: "true".to_owned(),
        };
    }

    let after_space = rest.trim_start();
    let (explicit_separator, text) = if let Some(text) = after_space.strip_prefix([':', '=']) {
        (true, text.trim_start())
    } else if after_space.len() < rest.len() {
        (false, after_space)
    } else {
        // The key runs straight into ';' or '#', as in "users;5".
        return IniLine::Malformed;
    };

    let value = match ini_value(text) {
        Some(value) => value.to_owned(),
        // "key =" and 'key = ""' give an empty value; 'key ""' reads as a
        // bare key, a quirk of the original regex kept for compatibility.
        None if explicit_separator => String::new(),
        None => "true".to_owned(),
    };
    IniLine::Setting { key, value }
}

/// The value part of `text` (everything after the separator), or `None`
/// when there is none. Mirrors the regex's preference order: a quoted value
/// if the matching closing quote can end it, else the whole text up to a
/// whitespace-preceded comment.
fn ini_value(text: &str) -> Option<&str> {
    // What may follow a value: nothing, or whitespace and then a comment.
    fn ends_value(rest: &str) -> bool {
        let trimmed = rest.trim_start();
        trimmed.is_empty() || (trimmed.len() < rest.len() && trimmed.starts_with(['#', ';']))
    }
    fn value_ends(s: &str) -> impl Iterator<Item = usize> + '_ {
        s.char_indices()
            .map(|(i, _)| i)
            .skip(1)
            .chain(std::iter::once(s.len()))
            .filter(|&i| i > 0)
    }

    if text.is_empty() {
        return None;
    }
    if let Some(quote) = text.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let body = &text[1..];
        let closed_at =
            |i: usize| body[i..].starts_with(quote) && ends_value(&body[i + quote.len_utf8()..]);
        if let Some(end) = value_ends(body).find(|&end| closed_at(end)) {
            return Some(&body[..end]);
        }
        if closed_at(0) {
            return None;
        }
    }
    value_ends(text)
        .find(|&end| ends_value(&text[end..]))
        .map(|end| &text[..end])
}

/// A `[...]` value: a JSON array if it is one, else configargparse's legacy
/// form of bare comma-separated items (`[a, b]`).
fn parse_list_literal(value: &str) -> Vec<String> {
    json_array(value).unwrap_or_else(|| {
        value[1..value.len() - 1]
            .split(',')
            .map(|item| item.trim().to_owned())
            .collect()
    })
}

/// Parses a JSON array of scalars into the strings Python's `str()` gives
/// for each element after `json.loads` (`true` → `True`, `null` → `None`,
/// `1.50` → `1.5`). Arrays containing arrays or objects are not handled and
/// take the legacy path, like any other non-JSON list.
fn json_array(text: &str) -> Option<Vec<String>> {
    let mut p = JsonCursor { rest: text };
    p.skip_ws();
    p.eat('[')?;
    let mut items = Vec::new();
    p.skip_ws();
    if p.eat(']').is_none() {
        loop {
            p.skip_ws();
            items.push(p.scalar()?);
            p.skip_ws();
            if p.eat(',').is_some() {
                continue;
            }
            p.eat(']')?;
            break;
        }
    }
    p.skip_ws();
    p.rest.is_empty().then_some(items)
}

/// Reads the four hex digits of a `\uXXXX` escape.
fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let digits: String = (0..4)
        .map(|_| chars.next().map(|(_, c)| c))
        .collect::<Option<_>>()?;
    u32::from_str_radix(&digits, 16).ok()
}

struct JsonCursor<'a> {
    rest: &'a str,
}

impl JsonCursor<'_> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\n', '\r']);
    }

    fn eat(&mut self, c: char) -> Option<()> {
        self.rest = self.rest.strip_prefix(c)?;
        Some(())
    }

    fn eat_word(&mut self, word: &str) -> bool {
        match self.rest.strip_prefix(word) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn scalar(&mut self) -> Option<String> {
        // Python's json module also accepts NaN and the infinities.
        for (word, python) in [
            ("true", "True"),
            ("false", "False"),
            ("null", "None"),
            ("NaN", "nan"),
            ("Infinity", "inf"),
            ("-Infinity", "-inf"),
        ] {
            if self.eat_word(word) {
                return Some(python.to_owned());
            }
        }
        if self.rest.starts_with('"') {
            self.string()
        } else {
            self.number()
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat('"')?;
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Some(out);
                }
                '\\' => {
                    let (_, escape) = chars.next()?;
                    out.push(match escape {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => {
                            let unit = hex4(&mut chars)?;
                            if (0xD800..0xDC00).contains(&unit) {
                                // A high surrogate must be followed by its low half.
                                let (Some((_, '\\')), Some((_, 'u'))) =
                                    (chars.next(), chars.next())
                                else {
                                    return None;
                                };
                                let low = hex4(&mut chars)?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(unit)?
                            }
                        }
                        _ => return None,
                    });
                }
                // Python's json rejects raw control characters in strings.
                c if c < ' ' => return None,
                c => out.push(c),
            }
        }
        None
    }

    fn number(&mut self) -> Option<String> {
        let bytes = self.rest.as_bytes();
        let digits_from = |start: usize| {
            start
                + bytes[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count()
        };
        let mut end = usize::from(bytes.first() == Some(&b'-'));
        let int_end = digits_from(end);
        // JSON forbids leading zeros, so "01" is not a number.
        if int_end == end || (bytes[end] == b'0' && int_end > end + 1) {
            return None;
        }
        end = int_end;
        let mut is_float = false;
        if bytes.get(end) == Some(&b'.') {
            let frac_end = digits_from(end + 1);
            if frac_end == end + 1 {
                return None;
            }
            end = frac_end;
            is_float = true;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let mut exp = end + 1;
            if matches!(bytes.get(exp), Some(b'+' | b'-')) {
                exp += 1;
            }
            let exp_end = digits_from(exp);
            if exp_end == exp {
                return None;
            }
            end = exp_end;
            is_float = true;
        }
        let (literal, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(if is_float {
            python_float_repr(literal.parse().ok()?)
        } else if literal == "-0" {
            "0".to_owned()
        } else {
            // Python ints are unbounded, so keep the digits as written.
            literal.to_owned()
        })
    }
}

/// Formats a float the way Python's `repr`/`str` does: shortest round-trip
/// digits, positional for exponents -4..16 (always with a fractional part),
/// otherwise scientific with a signed, at least two-digit exponent.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits as "d.ddde<exp>".
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("LowerExp output always has an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if value.is_sign_negative() { "-" } else { "" };

    let body = if (-4..16).contains(&exponent) {
        if exponent < 0 {
            let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
            format!("0.{zeros}{digits}")
        } else {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        }
    } else {
        let mantissa = match digits.split_at(1) {
            (first, "") => first.to_owned(),
            (first, rest) => format!("{first}.{rest}"),
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs())
    };
    format!("{sign}{body}")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads `[tool.locust]` from a TOML document. Other tables are ignored, and
/// a document without that table configures nothing.
fn parse_toml(text: &str, path: &Path, specs: &[OptionSpec]) -> Result<Layer, ConfigError> {
    let document = DeTable::parse(text).map_err(|err| ConfigError::Toml {
        origin: Origin::File {
            path: path.to_owned(),
            line: err.span().map_or(1, |span| line_of(text, span.start)),
        },
        message: err.message().trim_end().to_owned(),
    })?;
    let mut layer = Layer::new();
    let section = document
        .get_ref()
        .get("tool")
        .and_then(|tool| tool.get_ref().get("locust"));
    let Some(DeValue::Table(section)) = section.map(|s| s.get_ref()) else {
        return Ok(layer);
    };
    for (key, value) in section.iter() {
        let line = line_of(text, key.span().start);
        let index = lookup_key(key.get_ref(), path, line, specs)?;
        let origin = Origin::File {
            path: path.to_owned(),
            line,
        };
        let unsupported = |what| ConfigError::UnsupportedValue {
            origin: origin.clone(),
            option: specs[index].long.clone(),
            what,
        };
        let value = match value.get_ref() {
            DeValue::Array(items) => Value::List(
                items
                    .iter()
                    .map(|item| toml_scalar(item.get_ref()).map_err(&unsupported))
                    .collect::<Result<_, _>>()?,
            ),
            scalar => Value::Text(toml_scalar(scalar).map_err(&unsupported)?),
        };
        layer.insert(index, Setting { value, origin });
    }
    Ok(layer)
}

/// The string Locust would pass to its parser for a TOML scalar (Python's
/// `str()` of what `tomllib` returns), or what kind of value it is if it
/// has none. Dates and times keep their TOML spelling.
fn toml_scalar(value: &DeValue<'_>) -> Result<String, &'static str> {
    Ok(match value {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(int) => i128::from_str_radix(int.as_str(), int.radix())
            .map_or_else(|_| int.as_str().to_owned(), |n| n.to_string()),
        DeValue::Float(float) => float
            .as_str()
            .parse()
            .map_or_else(|_| float.as_str().to_owned(), python_float_repr),
        DeValue::Boolean(true) => "True".to_owned(),
        DeValue::Boolean(false) => "False".to_owned(),
        DeValue::Datetime(datetime) => datetime.to_string(),
        DeValue::Array(_) => return Err("nested array"),
        DeValue::Table(_) => return Err("table"),
    })
}

/// Values from the `LOCUST_*` variables of options the command has.
fn env_layer(specs: &[OptionSpec], env: &dyn Fn(&str) -> Option<String>) -> Layer {
    let mut layer = Layer::new();
    for (index, spec) in specs.iter().enumerate() {
        let Some(var) = env_var_for(&spec.long) else {
            continue;
        };
        let Some(raw) = env(var) else { continue };
        let takes_list = matches!(spec.kind, Kind::Multi | Kind::Repeated);
        let value = if takes_list && raw.is_empty() {
            continue;
        } else if takes_list && raw.starts_with('[') && raw.ends_with(']') {
            Value::List(parse_list_literal(&raw))
        } else {
            // Even for list options a plain string is one item: "a b" is a
            // single tag, exactly as in Locust.
            Value::Text(raw)
        };
        let origin = Origin::Env {
            var: var.to_owned(),
        };
        layer.insert(index, Setting { value, origin });
    }
    layer
}

/// configargparse's flag words; anything else is an error.
fn flag_word(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The argument tokens that give `spec` the configured value.
fn tokens_for(spec: &OptionSpec, setting: &Setting) -> Result<Vec<OsString>, ConfigError> {
    let flag = || OsString::from(format!("--{}", spec.long));
    // `--name=value` keeps values that start with '-' from being read as options.
    let with_value = |value: &str| OsString::from(format!("--{}={value}", spec.long));
    let invalid_flag = |value: &str| ConfigError::InvalidFlag {
        origin: setting.origin.clone(),
        option: spec.long.clone(),
        value: value.to_owned(),
    };
    Ok(match (spec.kind, &setting.value) {
        (Kind::Flag | Kind::Count | Kind::Single, Value::List(_)) => {
            return Err(ConfigError::UnexpectedList {
                origin: setting.origin.clone(),
                option: spec.long.clone(),
            })
        }
        (Kind::Flag, Value::Text(word)) => match flag_word(word) {
            Some(true) => vec![flag()],
            Some(false) => Vec::new(),
            None => return Err(invalid_flag(word)),
        },
        (Kind::Count, Value::Text(word)) => {
            let times = match flag_word(word) {
                Some(set) => usize::from(set),
                None => word.parse().map_err(|_| invalid_flag(word))?,
            };
            vec![flag(); times]
        }
        (Kind::Single | Kind::Multi | Kind::Repeated, Value::Text(value)) => {
            vec![with_value(value)]
        }
        (Kind::Multi, Value::List(items)) => std::iter::once(flag())
            .chain(items.iter().map(OsString::from))
            .collect(),
        (Kind::Repeated, Value::List(items)) => items.iter().map(|item| with_value(item)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{value_parser, Arg};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A command shaped like Hopper's: Locust's long names, flags as
    /// `SetTrue`, tag lists as `Set` with `num_args(0..)`, and positional
    /// User class names.
    fn locust_like_command() -> Command {
        let flag = |name: &'static str| Arg::new(name).long(name).action(ArgAction::SetTrue);
        let text = |name: &'static str| Arg::new(name).long(name);
        let list = |name: &'static str, short: char| {
            Arg::new(name)
                .long(name)
                .short(short)
                .num_args(0..)
                .action(ArgAction::Set)
        };
        Command::new("hopper")
            .args_override_self(true)
            .arg(text("locustfile").short('f').default_value("locustfile.py"))
            .arg(text("config"))
            .arg(text("host").short('H'))
            .arg(text("users").short('u').value_parser(value_parser!(u64)))
            .arg(
                text("spawn-rate")
                    .short('r')
                    .value_parser(value_parser!(f64)),
            )
            .arg(text("run-time").short('t'))
            .arg(flag("list").short('l'))
            .arg(text("web-host"))
            .arg(text("web-port").short('P').value_parser(value_parser!(u16)))
            .arg(flag("headless"))
            .arg(flag("autostart"))
            .arg(text("autoquit").value_parser(value_parser!(i64)))
            .arg(flag("master"))
            .arg(text("master-bind-host"))
            .arg(text("master-bind-port").value_parser(value_parser!(u16)))
            .arg(text("expect-workers").value_parser(value_parser!(u64)))
            .arg(text("expect-workers-max-wait").value_parser(value_parser!(u64)))
            .arg(flag("worker"))
            .arg(text("master-host"))
            .arg(text("master-port").value_parser(value_parser!(u16)))
            .arg(list("tags", 'T'))
            .arg(list("exclude-tags", 'E'))
            .arg(text("csv"))
            .arg(flag("csv-full-history"))
            .arg(flag("print-stats"))
            .arg(flag("only-summary"))
            .arg(flag("reset-stats"))
            .arg(text("html"))
            .arg(flag("json"))
            .arg(text("json-file"))
            .arg(text("loglevel").short('L'))
            .arg(text("logfile"))
            .arg(text("exit-code-on-error").value_parser(value_parser!(i32)))
            .arg(text("stop-timeout").short('s'))
            .arg(Arg::new("user_classes").num_args(0..))
    }

    /// A scratch home and working directory, removed on drop.
    struct Fixture {
        root: PathBuf,
        home: PathBuf,
        cwd: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "hopper-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let home = root.join("home");
            let cwd = root.join("work");
            std::fs::create_dir_all(&home).unwrap();
            std::fs::create_dir_all(&cwd).unwrap();
            Fixture { root, home, cwd }
        }

        fn home_file(&self, name: &str, text: &str) -> &Self {
            std::fs::write(self.home.join(name), text).unwrap();
            self
        }

        fn cwd_file(&self, name: &str, text: &str) -> &Self {
            std::fs::write(self.cwd.join(name), text).unwrap();
            self
        }

        fn layer(&self, argv: &[&str], env: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
            self.layer_with(&locust_like_command(), argv, env)
        }

        fn layer_with(
            &self,
            cmd: &Command,
            argv: &[&str],
            env: &[(&str, &str)],
        ) -> Result<Vec<String>, ConfigError> {
            let argv: Vec<OsString> = std::iter::once("hopper")
                .chain(argv.iter().copied())
                .map(OsString::from)
                .collect();
            let env: HashMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let lookup = |key: &str| env.get(key).cloned();
            let out = layered_args(cmd, &argv, &lookup, Some(&self.home), &self.cwd)?;
            Ok(out
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect())
        }

        /// Layers and then parses with clap, as Hopper's main does.
        fn parse(&self, argv: &[&str], env: &[(&str, &str)]) -> ArgMatches {
            let args = self.layer(argv, env).unwrap();
            locust_like_command()
                .try_get_matches_from(&args)
                .unwrap_or_else(|err| panic!("clap rejected {args:?}: {err}"))
        }

        fn error(&self, argv: &[&str], env: &[(&str, &str)]) -> String {
            match self.layer(argv, env) {
                Ok(args) => panic!("expected an error, got {args:?}"),
                Err(err) => err.to_string(),
            }
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn host(m: &ArgMatches) -> Option<&str> {
        m.get_one::<String>("host").map(String::as_str)
    }

    fn strings<'a>(m: &'a ArgMatches, id: &str) -> Option<Vec<&'a str>> {
        m.get_many::<String>(id)
            .map(|values| values.map(String::as_str).collect())
    }

    fn headless(m: &ArgMatches) -> bool {
        m.get_flag("headless")
    }

    #[test]
    fn without_config_argv_is_unchanged() {
        let f = Fixture::new();
        let argv = ["-u", "5", "--headless", "MyUser"];
        let out = f.layer(&argv, &[]).unwrap();
        assert_eq!(out, ["hopper", "-u", "5", "--headless", "MyUser"]);
    }

    #[test]
    fn home_config_is_read() {
        let f = Fixture::new();
        f.home_file(".locust.conf", "host = http://home\nusers = 3\nheadless\n");
        let m = f.parse(&[], &[]);
        assert_eq!(host(&m), Some("http://home"));
        assert_eq!(m.get_one::<u64>("users"), Some(&3));
        assert!(headless(&m));
    }

    #[test]
    fn cwd_locust_conf_beats_home() {
        let f = Fixture::new();
        f.home_file(".locust.conf", "host = http://home\nusers = 3\n");
        f.cwd_file("locust.conf", "host = http://cwd\n");
        let m = f.parse(&[], &[]);
        assert_eq!(host(&m), Some("http://cwd"));
        assert_eq!(
            m.get_one::<u64>("users"),
            Some(&3),
            "unset keys fall through"
        );
    }

    #[test]
    fn pyproject_beats_locust_conf() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "host = http://conf\nusers = 3\n");
        f.cwd_file(
            "pyproject.toml",
            "[project]\nname = \"x\"\n\n[tool.locust]\nhost = \"http://pyproject\"\n",
        );
        let m = f.parse(&[], &[]);
        assert_eq!(host(&m), Some("http://pyproject"));
        assert_eq!(m.get_one::<u64>("users"), Some(&3));
    }

    #[test]
    fn config_option_beats_pyproject_in_both_spellings() {
        let f = Fixture::new();
        f.cwd_file(
            "pyproject.toml",
            "[tool.locust]\nhost = \"http://pyproject\"\nusers = 2\n",
        );
        f.cwd_file("extra.conf", "host = http://extra\n");
        for argv in [&["--config", "extra.conf"][..], &["--config=extra.conf"]] {
            let m = f.parse(argv, &[]);
            assert_eq!(host(&m), Some("http://extra"), "{argv:?}");
            assert_eq!(m.get_one::<u64>("users"), Some(&2));
            assert_eq!(m.get_one::<String>("config").unwrap(), "extra.conf");
        }
    }

    #[test]
    fn env_beats_config_option() {
        let f = Fixture::new();
        f.cwd_file("extra.conf", "host = http://extra\nusers = 4\n");
        let m = f.parse(
            &["--config", "extra.conf"],
            &[("LOCUST_HOST", "http://env")],
        );
        assert_eq!(host(&m), Some("http://env"));
        assert_eq!(m.get_one::<u64>("users"), Some(&4));
    }

    #[test]
    fn command_line_beats_env_and_files() {
        let f = Fixture::new();
        f.cwd_file(
            "locust.conf",
            "host = http://conf\ntags = [a, b]\nusers = 9\n",
        );
        let env = [("LOCUST_HOST", "http://env"), ("LOCUST_USERS", "7")];
        let m = f.parse(&["-H", "http://cli", "--tags", "c", "--users=1"], &env);
        assert_eq!(host(&m), Some("http://cli"));
        assert_eq!(strings(&m, "tags"), Some(vec!["c"]));
        assert_eq!(m.get_one::<u64>("users"), Some(&1));
        // Overridden options are not even emitted.
        let out = f.layer(&["-H", "http://cli"], &env).unwrap();
        assert!(!out.iter().any(|a| a.contains("http://env")), "{out:?}");
    }

    #[test]
    fn short_and_attached_forms_on_the_command_line_count_as_set() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "users = 9\nspawn-rate = 3\n");
        let m = f.parse(&["-u5", "-r", "2"], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&5));
        assert_eq!(m.get_one::<f64>("spawn-rate"), Some(&2.0));
    }

    #[test]
    fn false_flag_in_a_later_file_undoes_an_earlier_true() {
        let f = Fixture::new();
        f.home_file(".locust.conf", "headless = true\nprint-stats = yes\n");
        f.cwd_file("locust.conf", "headless = false\n");
        let m = f.parse(&[], &[]);
        assert!(!headless(&m));
        assert!(m.get_flag("print-stats"));

        f.cwd_file("locust.conf", "headless = off\n");
        f.cwd_file("pyproject.toml", "[tool.locust]\nheadless = true\n");
        assert!(headless(&f.parse(&[], &[])));
        assert!(!headless(&f.parse(&[], &[("LOCUST_HEADLESS", "0")])));
    }

    #[test]
    fn env_flag_words() {
        let f = Fixture::new();
        for word in ["true", "TRUE", "yes", "on", "1", "True"] {
            assert!(
                headless(&f.parse(&[], &[("LOCUST_HEADLESS", word)])),
                "{word}"
            );
        }
        f.cwd_file("locust.conf", "headless = true\n");
        for word in ["false", "no", "Off", "0"] {
            assert!(
                !headless(&f.parse(&[], &[("LOCUST_HEADLESS", word)])),
                "{word}"
            );
        }
        assert_eq!(
            f.error(&[], &[("LOCUST_HEADLESS", "maybe")]),
            "environment variable LOCUST_HEADLESS: 'headless' expects \
             true/false/yes/no/on/off/1/0, got 'maybe'"
        );
        // Set but empty is not false: Locust rejects it too.
        assert!(f.error(&[], &[("LOCUST_HEADLESS", "")]).contains("got ''"));
    }

    #[test]
    fn env_names_follow_locust_including_the_odd_ones() {
        let f = Fixture::new();
        let env = [
            ("LOCUST_MODE_MASTER", "true"),
            ("LOCUST_MODE_WORKER", "true"),
            ("LOCUST_MASTER_NODE_HOST", "10.0.0.1"),
            ("LOCUST_MASTER_NODE_PORT", "6000"),
            ("LOCUST_LOCUSTFILE", "my.py"),
            ("LOCUST_RUN_TIME", "1h30m"),
            ("LOCUST_STOP_TIMEOUT", "10"),
            ("LOCUST_EXPECT_WORKERS_MAX_WAIT", "30"),
            // Options without a variable ignore look-alikes.
            ("LOCUST_JSON", "true"),
            ("LOCUST_JSON_FILE", "out"),
            ("LOCUST_LIST", "true"),
            ("LOCUST_MASTER", "false"),
            ("LOCUST_MASTER_HOST", "nope"),
        ];
        let m = f.parse(&[], &env);
        assert!(m.get_flag("master"));
        assert!(m.get_flag("worker"));
        assert_eq!(m.get_one::<String>("master-host").unwrap(), "10.0.0.1");
        assert_eq!(m.get_one::<u16>("master-port"), Some(&6000));
        assert_eq!(m.get_one::<String>("locustfile").unwrap(), "my.py");
        assert_eq!(m.get_one::<String>("run-time").unwrap(), "1h30m");
        assert_eq!(m.get_one::<String>("stop-timeout").unwrap(), "10");
        assert_eq!(m.get_one::<u64>("expect-workers-max-wait"), Some(&30));
        assert!(!m.get_flag("json"));
        assert!(!m.get_flag("list"));
        assert_eq!(m.get_one::<String>("json-file"), None);

        assert_eq!(env_var_for("class-picker"), Some("LOCUST_USERCLASS_PICKER"));
        assert_eq!(env_var_for("otel"), Some("LOCUST_ENABLE_OPENTELEMETRY"));
        for long in [
            "config",
            "list",
            "json",
            "json-file",
            "enable-rebalancing",
            "profile",
        ] {
            assert_eq!(env_var_for(long), None, "{long}");
        }
    }

    #[test]
    fn env_lists_need_list_syntax() {
        let f = Fixture::new();
        let m = f.parse(&[], &[("LOCUST_TAGS", "[a, b]")]);
        assert_eq!(strings(&m, "tags"), Some(vec!["a", "b"]));
        let m = f.parse(&[], &[("LOCUST_TAGS", "a b")]);
        assert_eq!(strings(&m, "tags"), Some(vec!["a b"]));
        let m = f.parse(&[], &[("LOCUST_EXCLUDE_TAGS", r#"["x y", "z"]"#)]);
        assert_eq!(strings(&m, "exclude-tags"), Some(vec!["x y", "z"]));
        let m = f.parse(&[], &[("LOCUST_TAGS", "[]")]);
        assert_eq!(strings(&m, "tags"), Some(vec![]));

        // Empty means unset for lists, so a file's list still applies.
        f.cwd_file("locust.conf", "tags = [c]\n");
        let m = f.parse(&[], &[("LOCUST_TAGS", "")]);
        assert_eq!(strings(&m, "tags"), Some(vec!["c"]));
    }

    #[test]
    fn file_lists() {
        let f = Fixture::new();
        let cases: [(&str, Option<Vec<&str>>); 6] = [
            ("tags = [a, b]", Some(vec!["a", "b"])),
            ("tags = [\"x\", \"y z\"]", Some(vec!["x", "y z"])),
            ("tags = a", Some(vec!["a"])),
            ("tags = a b", Some(vec!["a b"])),
            ("tags = []", Some(vec![])),
            ("tags = [1, true]", Some(vec!["1", "True"])),
        ];
        for (line, expected) in cases {
            f.cwd_file("locust.conf", &format!("{line}\n"));
            let m = f.parse(&[], &[]);
            assert_eq!(strings(&m, "tags"), expected, "{line}");
        }
        // An empty value leaves a lower file's list in place.
        f.home_file(".locust.conf", "exclude-tags = [slow]\n");
        f.cwd_file("locust.conf", "exclude-tags =\n");
        let m = f.parse(&[], &[]);
        assert_eq!(strings(&m, "exclude-tags"), Some(vec!["slow"]));
    }

    #[test]
    fn list_group_does_not_swallow_positionals() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "tags = [a, b]\nheadless = true\n");
        let m = f.parse(&["MyUser", "Other"], &[]);
        assert_eq!(strings(&m, "tags"), Some(vec!["a", "b"]));
        assert_eq!(strings(&m, "user_classes"), Some(vec!["MyUser", "Other"]));
        let m = f.parse(&["MyUser", "-u", "2"], &[]);
        assert_eq!(strings(&m, "user_classes"), Some(vec!["MyUser"]));
        assert_eq!(strings(&m, "tags"), Some(vec!["a", "b"]));
        let out = f.layer(&["MyUser", "-u", "2"], &[]).unwrap();
        assert_eq!(
            out,
            [
                "hopper",
                "MyUser",
                "--headless",
                "--tags",
                "a",
                "b",
                "-u",
                "2"
            ]
        );
    }

    #[test]
    fn repeated_list_option_on_the_command_line_keeps_the_last() {
        // With `ArgAction::Set` and `args_override_self`, clap behaves like
        // argparse's nargs='*': the last occurrence replaces earlier ones.
        let f = Fixture::new();
        f.cwd_file("locust.conf", "tags = [conf]\n");
        let m = f.parse(&["--tags", "a", "b", "--tags", "c"], &[]);
        assert_eq!(strings(&m, "tags"), Some(vec!["c"]));
        let m = f.parse(&["--tags", "a", "--tags"], &[]);
        assert_eq!(strings(&m, "tags"), Some(vec![]));
    }

    #[test]
    fn append_list_options_also_get_cli_precedence() {
        // Were tags declared with `ArgAction::Append` (derive's default for
        // a Vec), configured lists must still not merge with typed ones.
        let cmd = Command::new("hopper").args_override_self(true).arg(
            Arg::new("tags")
                .long("tags")
                .num_args(0..)
                .action(ArgAction::Append),
        );
        let f = Fixture::new();
        f.cwd_file("locust.conf", "tags = [conf, more]\n");
        let parse = |argv: &[&str]| {
            let args = f.layer_with(&cmd, argv, &[]).unwrap();
            let m = cmd.clone().try_get_matches_from(args).unwrap();
            strings(&m, "tags").map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(parse(&[]), Some(vec!["conf".to_owned(), "more".to_owned()]));
        assert_eq!(parse(&["--tags", "cli"]), Some(vec!["cli".to_owned()]));
    }

    #[test]
    fn one_value_per_occurrence_options_repeat() {
        let cmd = Command::new("hopper")
            .arg(Arg::new("header").long("header").action(ArgAction::Append))
            .arg(Arg::new("verbose").long("verbose").action(ArgAction::Count));
        let f = Fixture::new();
        f.cwd_file("locust.conf", "header = [a, b]\nverbose = 3\n");
        let args = f.layer_with(&cmd, &[], &[]).unwrap();
        assert_eq!(
            args,
            [
                "hopper",
                "--header=a",
                "--header=b",
                "--verbose",
                "--verbose",
                "--verbose"
            ]
        );
    }

    #[test]
    fn ini_syntax_variants() {
        let f = Fixture::new();
        f.cwd_file(
            "locust.conf",
            "# a comment\n\
             ; another comment\n\
             [locust]\n\
             ---\n\
             \n\
             host: http://colon:8080\n\
             users 12\n\
             --spawn-rate = 2.5\n\
             --run-time=1h\n\
             web-host = \"0.0.0.0\"\n\
             html = 'report.html'\n\
             csv = prefix   # trailing comment\n\
             logfile = a#b.log\n\
             loglevel\t=\tDEBUG\n\
             headless\n",
        );
        let m = f.parse(&[], &[]);
        assert_eq!(host(&m), Some("http://colon:8080"));
        assert_eq!(m.get_one::<u64>("users"), Some(&12));
        assert_eq!(m.get_one::<f64>("spawn-rate"), Some(&2.5));
        assert_eq!(m.get_one::<String>("run-time").unwrap(), "1h");
        assert_eq!(m.get_one::<String>("web-host").unwrap(), "0.0.0.0");
        assert_eq!(m.get_one::<String>("html").unwrap(), "report.html");
        assert_eq!(m.get_one::<String>("csv").unwrap(), "prefix");
        assert_eq!(m.get_one::<String>("logfile").unwrap(), "a#b.log");
        assert_eq!(m.get_one::<String>("loglevel").unwrap(), "DEBUG");
        assert!(headless(&m));
    }

    #[test]
    fn ini_line_splitting_matches_configargparse() {
        // Expected values were produced by configargparse's
        // DefaultConfigFileParser (the parser Locust 2.47 uses).
        let cases = [
            ("users #x", "users", "#x"),
            ("host = \"abc", "host", "\"abc"),
            ("host = \"a\" # c", "host", "a"),
            ("host = 'a' ; c", "host", "a"),
            ("host = \"\"", "host", ""),
            ("host:", "host", ""),
            ("host =", "host", ""),
            ("host = a = b", "host", "a = b"),
            ("--users=5", "--users", "5"),
            ("users=5#c", "users", "5#c"),
            ("users = 5 #c", "users", "5"),
            ("host \"quoted\"", "host", "quoted"),
            ("host \"\"", "host", "true"),
            ("host = \"a\" b\"", "host", "a\" b"),
            ("host = 'a\"", "host", "'a\""),
            ("host= \"a # b\"", "host", "a # b"),
            ("host = a;b", "host", "a;b"),
            ("host = a ;b", "host", "a"),
            ("host = \"a\" \"b\"", "host", "a\" \"b"),
            ("a:b:c", "a", "b:c"),
            ("k\u{a0}v", "k", "v"),
        ];
        for (line, key, value) in cases {
            assert_eq!(
                parse_ini_line(line),
                IniLine::Setting {
                    key,
                    value: value.to_owned()
                },
                "{line:?}"
            );
        }
        for line in ["users;5", "=5", ":x"] {
            assert_eq!(parse_ini_line(line), IniLine::Malformed, "{line:?}");
        }
        for line in ["", "   ", "# x", "; x", "[s]", "---", "----- x"] {
            assert_eq!(parse_ini_line(line), IniLine::Blank, "{line:?}");
        }
    }

    #[test]
    fn list_literals_match_python() {
        assert_eq!(parse_list_literal("[a, b]"), ["a", "b"]);
        assert_eq!(parse_list_literal("[ ]"), Vec::<String>::new());
        assert_eq!(parse_list_literal("[a,]"), ["a", ""]);
        assert_eq!(parse_list_literal("[\"a\",]"), ["\"a\"", ""]);
        assert_eq!(parse_list_literal("[a, \"b\"]"), ["a", "\"b\""]);
        assert_eq!(
            parse_list_literal(
                r#"[1, -0, 1e16, 1.0e-5, 1.50, NaN, -Infinity, null, false, "\u00e9\n", "\ud83d\ude00"]"#
            ),
            ["1", "0", "1e+16", "1e-05", "1.5", "nan", "-inf", "None", "False", "é\n", "😀"]
        );
    }

    #[test]
    fn floats_print_like_python() {
        for (value, text) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(python_float_repr(value), text, "{value}");
        }
    }

    #[test]
    fn toml_values() {
        let f = Fixture::new();
        f.cwd_file(
            "pyproject.toml",
            "[tool.other]\nusers = 99\n\n\
             [tool.locust]\n\
             users = 5\n\
             spawn-rate = 0.5\n\
             headless = true\n\
             only-summary = \"TRUE\"\n\
             print-stats = false\n\
             tags = [\"a\", 1, true]\n\
             exclude-tags = []\n\
             run-time = \"3m\"\n\
             expect-workers = 0x10\n",
        );
        let m = f.parse(&[], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&5));
        assert_eq!(m.get_one::<f64>("spawn-rate"), Some(&0.5));
        assert!(headless(&m));
        assert!(m.get_flag("only-summary"));
        assert!(!m.get_flag("print-stats"));
        assert_eq!(strings(&m, "tags"), Some(vec!["a", "1", "True"]));
        assert_eq!(strings(&m, "exclude-tags"), Some(vec![]));
        assert_eq!(m.get_one::<String>("run-time").unwrap(), "3m");
        assert_eq!(m.get_one::<u64>("expect-workers"), Some(&16));
        let out = f.layer(&[], &[]).unwrap();
        assert!(out.contains(&"--spawn-rate=0.5".to_owned()), "{out:?}");
    }

    #[test]
    fn toml_bool_false_overrides_a_lower_true() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "headless = true\n");
        f.cwd_file("pyproject.toml", "[tool.locust]\nheadless = false\n");
        assert!(!headless(&f.parse(&[], &[])));
    }

    #[test]
    fn pyproject_without_locust_table_is_ignored() {
        let f = Fixture::new();
        f.cwd_file(
            "pyproject.toml",
            "[project]\nname = \"x\"\n[tool.black]\nline-length = 88\n",
        );
        assert_eq!(f.layer(&[], &[]).unwrap(), ["hopper"]);
    }

    #[test]
    fn config_file_format_follows_its_extension() {
        let f = Fixture::new();
        // A .toml --config is TOML: other tables are ignored.
        f.cwd_file("run.toml", "[tool.locust]\nusers = 3\n[other]\nfoo = 1\n");
        let m = f.parse(&["--config", "run.toml"], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&3));
        // Anything else is INI, as in Locust: section headers are skipped,
        // so a key under another section is still an option.
        f.cwd_file("run.cfg", "[tool.locust]\nusers = 3\n[other]\nfoo = 1\n");
        assert_eq!(
            f.error(&["--config", "run.cfg"], &[]),
            "run.cfg:4: unknown option 'foo'"
        );
        f.cwd_file(
            "run.cfg",
            "[tool.locust]\nusers = 4\nhost = \"http://x\"\ntags = [\"a\"]\n",
        );
        let m = f.parse(&["--config", "run.cfg"], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&4));
        assert_eq!(host(&m), Some("http://x"));
        assert_eq!(strings(&m, "tags"), Some(vec!["a"]));
    }

    #[test]
    fn invalid_toml_is_an_error() {
        let f = Fixture::new();
        f.cwd_file("pyproject.toml", "[tool.locust]\nusers = \n");
        let err = f.error(&[], &[]);
        let path = f.cwd.join("pyproject.toml");
        assert!(
            err.starts_with(&format!("{}:2: invalid TOML: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn toml_tables_are_rejected() {
        let f = Fixture::new();
        f.cwd_file("x.toml", "[tool.locust]\nusers = 1\nhost = { a = 1 }\n");
        assert_eq!(
            f.error(&["--config=x.toml"], &[]),
            "x.toml:3: 'host' cannot be set to a TOML table"
        );
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "# settings\nusers = 2\nuzers = 3\n");
        let path = f.cwd.join("locust.conf");
        assert_eq!(
            f.error(&[], &[]),
            format!(
                "{}:3: unknown option 'uzers' (did you mean 'users'?)",
                path.display()
            )
        );
        f.cwd_file("locust.conf", "spawn_rate = 3\n");
        assert!(f
            .error(&[], &[])
            .ends_with(":1: unknown option 'spawn_rate' (did you mean 'spawn-rate'?)"));
        f.cwd_file("locust.conf", "--usres = 3\n");
        assert!(f
            .error(&[], &[])
            .ends_with(":1: unknown option '--usres' (did you mean 'users'?)"));
        f.cwd_file("locust.conf", "-H = x\n");
        assert!(f.error(&[], &[]).ends_with(
            ":1: unknown option '-H' (config files take long option names: did you mean 'host'?)"
        ));
        f.cwd_file("locust.conf", "zzzzzz = 3\n");
        assert!(f.error(&[], &[]).ends_with(":1: unknown option 'zzzzzz'"));
        // Help is not configurable.
        f.cwd_file("locust.conf", "help = true\n");
        assert!(f.error(&[], &[]).contains("unknown option 'help'"));

        std::fs::remove_file(f.cwd.join("locust.conf")).unwrap();
        f.cwd_file(
            "pyproject.toml",
            "[tool.locust]\nusers = 1\n\nheadlass = true\n",
        );
        assert!(f
            .error(&[], &[])
            .ends_with("pyproject.toml:4: unknown option 'headlass' (did you mean 'headless'?)"));
    }

    #[test]
    fn keys_may_abbreviate_long_names_like_argparse() {
        let f = Fixture::new();
        f.cwd_file(
            "locust.conf",
            "user = 3\n-users- = 4\ntag = [a, b]\nheadl = true\nexclude = [c]\n",
        );
        let m = f.parse(&[], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&4));
        assert_eq!(strings(&m, "tags"), Some(vec!["a", "b"]));
        assert_eq!(strings(&m, "exclude-tags"), Some(vec!["c"]));
        assert!(headless(&m));

        f.cwd_file("locust.conf", "\nmaster-bind = x\n");
        assert_eq!(
            f.error(&[], &[]),
            format!(
                "{}:2: ambiguous option 'master-bind' could be any of \
                 'master-bind-host', 'master-bind-port'",
                f.cwd.join("locust.conf").display()
            )
        );
    }

    #[test]
    fn bad_flag_word_names_file_and_line() {
        let f = Fixture::new();
        f.home_file(".locust.conf", "\nheadless = maybe\n");
        assert_eq!(
            f.error(&[], &[]),
            format!(
                "{}:2: 'headless' expects true/false/yes/no/on/off/1/0, got 'maybe'",
                f.home.join(".locust.conf").display()
            )
        );
        // A value the command line overrides is never looked at, as in Locust.
        let m = f.parse(&["--headless"], &[]);
        assert!(headless(&m));
    }

    #[test]
    fn list_for_single_value_option_is_an_error() {
        let f = Fixture::new();
        f.cwd_file("my.conf", "users = [1, 2]\n");
        assert_eq!(
            f.error(&["--config", "my.conf"], &[]),
            "my.conf:1: 'users' takes a single value, not a list"
        );
        // An environment variable is only list syntax for list options.
        let m = f.parse(&[], &[("LOCUST_HOST", "[a]")]);
        assert_eq!(host(&m), Some("[a]"));
    }

    #[test]
    fn malformed_line_is_an_error() {
        let f = Fixture::new();
        f.cwd_file("my.conf", "users = 1\nusers;5\n");
        assert_eq!(
            f.error(&["--config", "my.conf"], &[]),
            "my.conf:2: cannot understand 'users;5'; expected 'option = value'"
        );
    }

    #[test]
    fn missing_config_file_is_an_error_but_missing_defaults_are_not() {
        let f = Fixture::new();
        assert_eq!(f.layer(&["-u", "1"], &[]).unwrap(), ["hopper", "-u", "1"]);
        let err = f.layer(&["--config", "nope.conf"], &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            err.to_string()
                .starts_with("could not read config file nope.conf: "),
            "{err}"
        );
    }

    #[test]
    fn config_path_expands_home() {
        let f = Fixture::new();
        f.home_file("team.conf", "users = 8\n");
        let m = f.parse(&["--config", "~/team.conf"], &[]);
        assert_eq!(m.get_one::<u64>("users"), Some(&8));
    }

    #[test]
    fn user_classes_from_env_are_whitespace_split() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "tags = [a]\n");
        let env = [(USER_CLASSES_ENV, "  First \t Second  ")];
        let m = f.parse(&["--headless"], &env);
        assert_eq!(strings(&m, "user_classes"), Some(vec!["First", "Second"]));
        assert_eq!(strings(&m, "tags"), Some(vec!["a"]));
        assert!(headless(&m));
        let out = f.layer(&["--tags", "x"], &env).unwrap();
        let m = locust_like_command().try_get_matches_from(&out).unwrap();
        assert_eq!(strings(&m, "tags"), Some(vec!["x"]), "{out:?}");
        assert_eq!(strings(&m, "user_classes"), Some(vec!["First", "Second"]));
    }

    #[test]
    fn command_line_user_classes_beat_env() {
        let f = Fixture::new();
        let env = [(USER_CLASSES_ENV, "First Second")];
        let m = f.parse(&["Third"], &env);
        assert_eq!(strings(&m, "user_classes"), Some(vec!["Third"]));
        let m = f.parse(&["-u", "1", "Third"], &env);
        assert_eq!(strings(&m, "user_classes"), Some(vec!["Third"]));
    }

    #[test]
    fn values_starting_with_a_dash_stay_values() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "host = -weird\nautoquit = -1\n");
        let m = f.parse(&[], &[]);
        assert_eq!(host(&m), Some("-weird"));
        assert_eq!(m.get_one::<i64>("autoquit"), Some(&-1));
    }

    #[test]
    fn help_skips_configuration() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "nonsense = 1\n");
        let out = f.layer(&["--help"], &[]).unwrap();
        assert_eq!(out, ["hopper", "--help"]);
    }

    #[test]
    fn command_line_errors_are_left_to_clap() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "users = 2\n");
        let out = f.layer(&["--bogus", "-u", "x"], &[]).unwrap();
        let err = locust_like_command()
            .try_get_matches_from(&out)
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn later_line_wins_within_a_file() {
        let f = Fixture::new();
        f.cwd_file("locust.conf", "users = 1\n--users = 2\n");
        assert_eq!(f.parse(&[], &[]).get_one::<u64>("users"), Some(&2));
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("users", "users"), 0);
        assert_eq!(edit_distance("usres", "users"), 1);
        assert_eq!(edit_distance("user", "users"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
