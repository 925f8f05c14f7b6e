//! `conntrackd`: the daemon and its client, command-line compatible with
//! conntrackd 1.4.7.
// A binary: `pub` marks module interfaces, not a public API.
#![allow(unreachable_pub)]

mod accept_backoff;
mod cli;
#[cfg(test)]
mod cli_reference;
mod client_slots;
mod control;
mod counters;
mod daemon;
mod daemonize;
mod dump_feed;
mod helpers;
mod json;
mod kernel_dump;
mod lockfile;
mod logger;
mod metrics;
mod node;
mod replication;
mod runtime_stats;
mod systemd;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use cli::{Action, CliOutcome};
use conntrackd_config::{Config, Parsed, Severity};
use conntrackd_core::request::{Asked, Request};

fn main() -> ExitCode {
    match cli::parse_args(std::env::args_os().skip(1)) {
        CliOutcome::Exit {
            code,
            stdout,
            stderr_lines,
        } => {
            print!("{stdout}");
            let _ = std::io::stdout().flush();
            for (level, line) in stderr_lines {
                logger::log(level.into(), &line);
            }
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        CliOutcome::Run(cli) => {
            for message in &cli.messages {
                logger::log(message.level.into(), &message.text);
            }
            match cli.action {
                Action::Check => check(&cli.config_path),
                Action::Request(request) => client(
                    &cli.config_path,
                    Asked {
                        request,
                        json: cli.json,
                    },
                ),
                Action::Daemon { background } => {
                    if daemonize::is_child() {
                        daemon(&cli.config_path, true)
                    } else if background {
                        daemonize::spawn_child()
                    } else {
                        daemon(&cli.config_path, false)
                    }
                }
            }
        }
    }
}

impl From<cli::Level> for logger::Level {
    fn from(level: cli::Level) -> Self {
        match level {
            cli::Level::Warning => logger::Level::Warning,
            cli::Level::Error => logger::Level::Error,
        }
    }
}

/// Loads the configuration, printing its diagnostics with the C daemon's
/// log prefix. Returns None (after printing why) when it cannot be used.
fn load_config(path: &Path, show_notices: bool) -> Option<Config> {
    let (source, parsed) = match conntrackd_config::load(path) {
        Ok(loaded) => loaded,
        Err(_) => {
            logger::error(&format!("can't open config file `{}'", path.display()));
            return None;
        }
    };
    let Parsed {
        config,
        diagnostics,
    } = parsed;
    let shown = path.display().to_string();
    // 1.4.7 stops at its first syntax error with one line that scripts
    // grep for (docs/config.md §2.3): that line first, then ours.
    if config.is_none()
        && let Some(line) = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .find_map(|d| d.c_syntax_error())
    {
        logger::error(&line);
    }
    for diagnostic in &diagnostics {
        if diagnostic.severity == Severity::Notice && !show_notices {
            continue;
        }
        // What the daemon leaves unused is a warning here, as in 1.4.7;
        // only `--check` treats it as an error.
        let level = match diagnostic.severity {
            Severity::Error => logger::Level::Error,
            Severity::Ignored | Severity::Warning => logger::Level::Warning,
            Severity::Notice => logger::Level::Notice,
        };
        logger::log(
            level,
            &format!("{}: {}", diagnostic.location(&shown), diagnostic.message),
        );
    }
    if config.is_none() {
        // The full rendering with the offending line goes to stderr once.
        for diagnostic in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
            eprint!("{}", diagnostic.render(&source, &shown));
        }
    }
    config
}

/// `--check` status of a configuration the daemon accepts but would not
/// use as written (values ignored, keys not honoured); 1 means rejected.
const CHECK_NOT_AS_WRITTEN: u8 = 2;

/// `conntrackd -C FILE --check`: validate without starting anything.
fn check(path: &Path) -> ExitCode {
    let (source, parsed) = match conntrackd_config::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}: can't open config file: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let shown = path.display().to_string();
    for diagnostic in &parsed.diagnostics {
        eprint!("{}", diagnostic.render(&source, &shown));
    }
    let ignored = parsed.ignored_count();
    // A Helper section is only usable on a kernel with the cthelper
    // subsystem: asked of this machine's kernel (docs/helpers.md).
    if let Some(config) = &parsed.config {
        match helpers::check(config) {
            helpers::CheckOutcome::Usable(note) => {
                if let Some(note) = note {
                    eprintln!("{shown}: {note}");
                }
            }
            helpers::CheckOutcome::Refused(message) => {
                eprintln!("{shown}: error: {message}");
                eprintln!("{shown}: 1 error(s), configuration rejected");
                return ExitCode::FAILURE;
            }
            helpers::CheckOutcome::Unknown(message) => eprintln!("{shown}: warning: {message}"),
        }
    }
    match parsed.config {
        Some(config) if ignored > 0 => {
            eprintln!(
                "{shown}: {ignored} setting(s) the daemon would leave unused: it starts, but not as written"
            );
            print!("{}", conntrackd_config::check_summary(&config));
            ExitCode::from(CHECK_NOT_AS_WRITTEN)
        }
        Some(config) => {
            println!("{shown}: configuration OK");
            print!("{}", conntrackd_config::check_summary(&config));
            ExitCode::SUCCESS
        }
        None => {
            let errors = parsed
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            eprintln!("{shown}: {errors} error(s), configuration rejected");
            ExitCode::FAILURE
        }
    }
}

/// Client mode: send one request to the running daemon.
fn client(config_path: &Path, asked: Asked) -> ExitCode {
    let Some(config) = load_config(config_path, false) else {
        return ExitCode::FAILURE;
    };
    let Some(socket) = config.general.unix_path.as_deref() else {
        logger::error(&control::ConnectError.to_string());
        return ExitCode::FAILURE;
    };
    if asked.request == Request::Synced {
        return synced(socket, asked);
    }
    let mut stdout = std::io::stdout().lock();
    match control::send_request(socket, asked, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logger::error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// `--synced`: the reply is printed, and the exit status says it (0 only
/// for a daemon that answered that it is synced), for keepalived.
fn synced(socket: &Path, asked: Asked) -> ExitCode {
    let mut reply = Vec::new();
    if let Err(e) = control::send_request(socket, asked, &mut reply) {
        logger::error(&e.to_string());
        return ExitCode::FAILURE;
    }
    let text = String::from_utf8_lossy(&reply);
    print!("{text}");
    let yes = text.starts_with("synced") || text.contains("\"synced\":true");
    if yes {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn daemon(config_path: &Path, background: bool) -> ExitCode {
    let Some(config) = load_config(config_path, true) else {
        return ExitCode::FAILURE;
    };
    daemon::run(config, config_path, background)
}
