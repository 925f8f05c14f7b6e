//! The command line of conntrackd 1.4.7 (docs/control-and-cli.md §1–§2), with
//! its quirks: only the second character of each argument is looked at,
//! sub-arguments match by prefix, the last client command wins.  As in
//! 1.4.9 (docs/migration.md), an unknown option and `-C` without a file
//! name exit 1 (1.4.7: 0, and a daemon on the default file).  Pure:
//! nothing is printed here.

use std::ffi::OsString;
use std::path::PathBuf;

pub use conntrackd_core::request::Request;

pub const USAGE: &str = "Connection tracking userspace daemon v1.4.7
Usage: conntrackd [commands] [options]

General commands:
  -d, run in daemon mode
  -C [configfile], configuration file path
  -v, display conntrackd version
  -h, display this help information

Client mode commands:
  -c [ct|expect], commit external cache to conntrack table
  -f [internal|external], flush internal and external cache
  -F [ct|expect], flush kernel conntrack table
  -i [ct|expect], display content of the internal cache
  -e [ct|expect], display the content of the external cache
  -k, kill conntrack daemon
  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics
  -R [ct|expect], resync with kernel conntrack table
  -n, request resync with other node (only FT-FW and NOTRACK modes)
  -B, force a bulk send to other replica firewalls
  -x, dump cache in XML format (requires -i or -e)
  -t, reset the kernel timeout (see PurgeTimeout clause)

";

pub const VERSION_TEXT: &str = "Connection tracking userspace daemon v1.4.7. Licensed under GPLv2.
(C) 2006-2009 Pablo Neira Ayuso <pablo@netfilter.org>
";

pub const DEFAULT_CONFIG: &str = "/etc/conntrackd/conntrackd.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliMessage {
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Daemon { background: bool },
    Request(Request),
    Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub action: Action,
    pub config_path: PathBuf,
    /// `--json`: machine-readable output (our extension).
    pub json: bool,
    /// Non-fatal messages to print before acting, in order.
    pub messages: Vec<CliMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliOutcome {
    Run(Cli),
    Exit {
        code: i32,
        stdout: String,
        stderr_lines: Vec<(Level, String)>,
    },
}

fn usage_exit(code: i32, error: String) -> CliOutcome {
    CliOutcome::Exit {
        code,
        stdout: USAGE.to_string(),
        stderr_lines: vec![(Level::Error, error)],
    }
}

/// The first candidate that `word` is a prefix of (the empty word matches
/// the first candidate).
fn prefix_match<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|c| c.starts_with(word))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Daemon,
    Request,
}

/// Parses the arguments (without argv[0]).
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> CliOutcome {
    let args: Vec<OsString> = args.into_iter().collect();
    let text: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut kind: Option<Kind> = None;
    let mut code: Option<Request> = None;
    let mut config_path = PathBuf::from(DEFAULT_CONFIG);
    let mut json = false;
    let mut check = false;
    let mut messages = Vec::new();

    let set_kind = |kind: &mut Option<Kind>, want: Kind| -> bool {
        match *kind {
            Some(k) if k != want => false,
            _ => {
                *kind = Some(want);
                true
            }
        }
    };
    let invalid = || usage_exit(1, "Invalid parameters".to_string());

    let mut i = 0;
    while i < text.len() {
        let arg = &text[i];
        // Our long options come first: they are not in the C daemon.
        match arg.as_str() {
            "--check" => {
                check = true;
                i += 1;
                continue;
            }
            "--json" => {
                json = true;
                i += 1;
                continue;
            }
            "--synced" => {
                if !set_kind(&mut kind, Kind::Request) {
                    return invalid();
                }
                code = Some(Request::Synced);
                i += 1;
                continue;
            }
            "--help" => {
                return CliOutcome::Exit {
                    code: 0,
                    stdout: USAGE.to_string(),
                    stderr_lines: vec![],
                };
            }
            "--version" => {
                return CliOutcome::Exit {
                    code: 0,
                    stdout: VERSION_TEXT.to_string(),
                    stderr_lines: vec![],
                };
            }
            _ => {}
        }
        let letter = arg.chars().nth(1);
        // A following argument is a sub-argument only if it exists and
        // does not start with '-'.
        let next = text.get(i + 1).filter(|n| !n.starts_with('-')).cloned();
        match letter {
            Some('d') => {
                if !set_kind(&mut kind, Kind::Daemon) {
                    return invalid();
                }
                i += 1;
                continue;
            }
            Some('C') => match text.get(i + 1) {
                Some(path) => {
                    config_path = PathBuf::from(path);
                    i += 2;
                }
                None => return usage_exit(1, "Missing config filename".to_string()),
            },
            Some(c @ ('c' | 'i' | 'e' | 'F' | 'R')) => {
                if !set_kind(&mut kind, Kind::Request) {
                    return invalid();
                }
                let (none, ct, expect) = match c {
                    'c' => (Request::AllCommit, Request::CtCommit, Request::ExpCommit),
                    'i' => (
                        Request::CtDumpInternal,
                        Request::CtDumpInternal,
                        Request::ExpDumpInternal,
                    ),
                    'e' => (
                        Request::CtDumpExternal,
                        Request::CtDumpExternal,
                        Request::ExpDumpExternal,
                    ),
                    'F' => (
                        Request::AllFlushMaster,
                        Request::CtFlushMaster,
                        Request::ExpFlushMaster,
                    ),
                    _ => (
                        Request::AllResyncMaster,
                        Request::CtResyncMaster,
                        Request::ExpResyncMaster,
                    ),
                };
                i += 1;
                code = Some(none);
                if let Some(word) = &next {
                    // A word matching neither is not consumed.
                    match prefix_match(word, &["ct", "expect"]) {
                        Some("ct") => {
                            code = Some(ct);
                            i += 1;
                        }
                        Some(_) => {
                            code = Some(expect);
                            i += 1;
                        }
                        None => {}
                    }
                }
            }
            Some('f') => {
                if !set_kind(&mut kind, Kind::Request) {
                    return invalid();
                }
                i += 1;
                code = Some(Request::AllFlushCache);
                if let Some(word) = &next {
                    match prefix_match(word, &["internal", "external"]) {
                        Some("internal") => code = Some(Request::CtFlushIntCache),
                        Some(_) => code = Some(Request::CtFlushExtCache),
                        None => {
                            return CliOutcome::Exit {
                                code: 1,
                                stdout: String::new(),
                                stderr_lines: vec![(
                                    Level::Error,
                                    format!("unknown parameter `{word}' for option `-f'"),
                                )],
                            };
                        }
                    }
                    i += 1;
                }
            }
            Some('s') => {
                if !set_kind(&mut kind, Kind::Request) {
                    return invalid();
                }
                i += 1;
                code = Some(Request::Stats);
                if let Some(word) = &next {
                    let table = [
                        ("network", Request::StatsNetwork),
                        ("cache", Request::StatsCache),
                        ("runtime", Request::StatsRuntime),
                        ("multicast", Request::StatsLink),
                        ("link", Request::StatsLink),
                        ("rsqueue", Request::StatsRsqueue),
                        ("process", Request::StatsProcess),
                        ("queue", Request::StatsQueue),
                        ("ct", Request::Stats),
                        ("expect", Request::ExpStats),
                    ];
                    match table
                        .iter()
                        .find(|(name, _)| name.starts_with(word.as_str()))
                    {
                        Some((name, c)) => {
                            if *name == "multicast" {
                                messages.push(CliMessage {
                                    level: Level::Warning,
                                    text: "use `link' instead of `multicast' as parameter."
                                        .to_string(),
                                });
                            }
                            code = Some(*c);
                        }
                        None => {
                            return CliOutcome::Exit {
                                code: 1,
                                stdout: String::new(),
                                stderr_lines: vec![(
                                    Level::Error,
                                    format!("unknown parameter `{word}' for option `-s'"),
                                )],
                            };
                        }
                    }
                    i += 1;
                }
            }
            Some(c @ ('B' | 'n' | 't' | 'k')) => {
                if !set_kind(&mut kind, Kind::Request) {
                    return invalid();
                }
                code = Some(match c {
                    'B' => Request::SendBulk,
                    'n' => Request::RequestDump,
                    't' => Request::ResetTimers,
                    _ => Request::Kill,
                });
                i += 1;
            }
            Some('x') => {
                let converted = match code {
                    Some(Request::CtDumpInternal) => Request::CtDumpIntXml,
                    Some(Request::CtDumpExternal) => Request::CtDumpExtXml,
                    Some(Request::ExpDumpInternal) => Request::ExpDumpIntXml,
                    Some(Request::ExpDumpExternal) => Request::ExpDumpExtXml,
                    _ => return invalid(),
                };
                code = Some(converted);
                i += 1;
            }
            Some('v') => {
                return CliOutcome::Exit {
                    code: 0,
                    stdout: VERSION_TEXT.to_string(),
                    stderr_lines: vec![],
                };
            }
            Some('h') => {
                return CliOutcome::Exit {
                    code: 0,
                    stdout: USAGE.to_string(),
                    stderr_lines: vec![],
                };
            }
            _ => return usage_exit(1, format!("Unknown option: {arg}")),
        }
    }

    let action = if check {
        Action::Check
    } else {
        match (kind, code) {
            (Some(Kind::Request), Some(request)) => Action::Request(request),
            (Some(Kind::Daemon), _) => Action::Daemon { background: true },
            _ => Action::Daemon { background: false },
        }
    };
    CliOutcome::Run(Cli {
        action,
        config_path,
        json,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> CliOutcome {
        parse_args(args.iter().map(OsString::from))
    }

    fn request(args: &[&str]) -> i32 {
        match parse(args) {
            CliOutcome::Run(Cli {
                action: Action::Request(r),
                ..
            }) => r.code(),
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn exit(args: &[&str]) -> (i32, Vec<(Level, String)>) {
        match parse(args) {
            CliOutcome::Exit {
                code, stderr_lines, ..
            } => (code, stderr_lines),
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn request_codes_follow_the_table() {
        assert_eq!(request(&["-s"]), 21);
        assert_eq!(request(&["-s", "exp"]), 37);
        assert_eq!(request(&["-s", "c"]), 29);
        assert_eq!(request(&["-s", "ct"]), 21);
        assert_eq!(request(&["-s", "r"]), 30);
        assert_eq!(request(&["-s", ""]), 28);
        assert_eq!(request(&["-s", "link"]), 31);
        assert_eq!(request(&["-s", "q"]), 36);
        assert_eq!(request(&["-i"]), 16);
        assert_eq!(request(&["-i", "expect"]), 40);
        assert_eq!(request(&["-i", "-x"]), 24);
        assert_eq!(request(&["-e", "-x"]), 25);
        assert_eq!(request(&["-e", "e", "-x"]), 48);
        assert_eq!(request(&["-c"]), 46);
        assert_eq!(request(&["-c", "ct"]), 18);
        assert_eq!(request(&["-c", "expect"]), 42);
        assert_eq!(request(&["-F"]), 43);
        assert_eq!(request(&["-F", "c"]), 0);
        assert_eq!(request(&["-R"]), 44);
        assert_eq!(request(&["-R", "ct"]), 1);
        assert_eq!(request(&["-f"]), 45);
        assert_eq!(request(&["-f", "i"]), 33);
        assert_eq!(request(&["-f", "external"]), 34);
        assert_eq!(request(&["-B"]), 22);
        assert_eq!(request(&["-n"]), 23);
        assert_eq!(request(&["-t"]), 26);
        assert_eq!(request(&["-k"]), 20);
    }

    #[test]
    fn only_the_second_character_counts_and_last_command_wins() {
        assert_eq!(request(&["xs"]), 21);
        assert_eq!(request(&["-sfoo"]), 21);
        assert_eq!(request(&["-k", "-s"]), 21);
        assert_eq!(request(&["-C", "/tmp/x.conf", "-k"]), 20);
    }

    #[test]
    fn multicast_is_link_with_a_warning() {
        match parse(&["-s", "m"]) {
            CliOutcome::Run(cli) => {
                assert_eq!(
                    Some(cli.action),
                    Request::from_code(31).map(Action::Request)
                );
                assert_eq!(cli.messages[0].level, Level::Warning);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quirky_exits() {
        // 1.4.7 exits 0 here; 1.4.9 and we exit 1.
        assert_eq!(exit(&["-i", "foo"]).0, 1);
        assert_eq!(exit(&["-i", "foo"]).1[0].1, "Unknown option: foo");
        assert_eq!(exit(&["-c", "bogus"]).0, 1);
        assert_eq!(exit(&["-q"]).0, 1);
        assert_eq!(
            exit(&["-C"]),
            (1, vec![(Level::Error, "Missing config filename".into())])
        );
        assert_eq!(exit(&["-s", "-C"]).0, 1);
        assert_eq!(
            exit(&["-x"]),
            (1, vec![(Level::Error, "Invalid parameters".into())])
        );
        assert_eq!(exit(&["-d", "-s"]).0, 1);
        assert_eq!(exit(&["-s", "-d"]).0, 1);
        assert_eq!(
            exit(&["-f", "bogus"]),
            (
                1,
                vec![(
                    Level::Error,
                    "unknown parameter `bogus' for option `-f'".into()
                )]
            )
        );
        assert_eq!(exit(&["-s", "zz"]).0, 1);
        assert_eq!(exit(&["-v"]).0, 0);
        assert_eq!(exit(&["-h"]).0, 0);
    }

    #[test]
    fn daemon_modes_and_config_path() {
        match parse(&["-C", "/etc/x.conf", "-d"]) {
            CliOutcome::Run(cli) => {
                assert_eq!(cli.action, Action::Daemon { background: true });
                assert_eq!(cli.config_path, PathBuf::from("/etc/x.conf"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[]) {
            CliOutcome::Run(cli) => {
                assert_eq!(cli.action, Action::Daemon { background: false });
                assert_eq!(cli.config_path, PathBuf::from(DEFAULT_CONFIG));
            }
            other => panic!("{other:?}"),
        }
        match parse(&["-C", "/x", "--check"]) {
            CliOutcome::Run(cli) => assert_eq!(cli.action, Action::Check),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usage_text_ends_with_an_empty_line() {
        assert!(USAGE.ends_with("clause)\n\n"));
        assert!(USAGE.contains("  -s  [network"));
    }

    /// The documented flags (`cli_reference.rs`) against this parser.
    mod reference {
        use super::*;
        use crate::cli_reference::{Arg, FLAGS, Group};

        fn unknown_option(outcome: &CliOutcome) -> bool {
            matches!(outcome, CliOutcome::Exit { stderr_lines, .. }
                if stderr_lines.iter().any(|(_, l)| l.starts_with("Unknown option")))
        }

        #[test]
        fn every_letter_the_parser_knows_is_documented_and_no_other() {
            for c in ('a'..='z').chain('A'..='Z') {
                let flag = format!("-{c}");
                let parsed = !unknown_option(&parse(&[&flag]));
                let documented = FLAGS.iter().any(|f| f.flag == flag);
                assert_eq!(
                    parsed, documented,
                    "{flag}: parsed {parsed}, documented {documented}"
                );
            }
        }

        #[test]
        fn every_long_option_in_the_parser_is_documented_and_no_other() {
            let source = include_str!("cli.rs");
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            let mut in_parser: Vec<&str> = code
                .match_indices("\"--")
                .filter_map(|(at, _)| {
                    let rest = &code[at + 1..];
                    rest.find('"').map(|end| &rest[..end])
                })
                .collect();
            in_parser.sort_unstable();
            in_parser.dedup();
            let mut documented: Vec<&str> = FLAGS
                .iter()
                .flat_map(|f| [Some(f.flag), f.alias])
                .flatten()
                .filter(|f| f.starts_with("--"))
                .collect();
            documented.sort_unstable();
            assert_eq!(in_parser, documented);
            for long in documented {
                assert!(!unknown_option(&parse(&[long])), "{long}");
            }
        }

        #[test]
        fn usage_flags_are_documented() {
            for line in USAGE.lines().filter(|l| l.starts_with("  -")) {
                let flag = &line[2..4];
                let f = FLAGS.iter().find(|f| f.flag == flag);
                assert!(
                    f.is_some_and(|f| f.group != Group::Extension),
                    "{flag} of the usage text is not documented as a 1.4.7 flag"
                );
            }
            for f in FLAGS.iter().filter(|f| f.group != Group::Extension) {
                assert!(
                    USAGE.contains(&format!("  {},", f.flag))
                        || USAGE.contains(&format!("  {} ", f.flag)),
                    "{}",
                    f.flag
                );
            }
        }

        #[test]
        fn exit_statuses_the_parser_produces_are_documented() {
            use crate::cli_reference::EXIT_STATUS;
            let documented: Vec<i32> = EXIT_STATUS
                .iter()
                .filter_map(|(code, _)| code.parse().ok())
                .collect();
            assert_eq!(documented.len(), EXIT_STATUS.len());
            for args in [
                &["-h"][..],
                &["-v"],
                &["-q"],
                &["-x"],
                &["-f", "bogus"],
                &["-s", "bogus"],
                &["-d", "-k"],
            ] {
                match parse(args) {
                    CliOutcome::Exit { code, .. } => {
                        assert!(documented.contains(&code), "{args:?} exits {code}")
                    }
                    other => panic!("{args:?}: {other:?}"),
                }
            }
        }

        #[test]
        fn documented_signals_are_the_ones_the_daemon_handles() {
            use crate::cli_reference::SIGNALS;
            let names = [
                ("SIGTERM", "terminate"),
                ("SIGINT", "interrupt"),
                ("SIGHUP", "hangup"),
                ("SIGUSR1", "user_defined1"),
                ("SIGUSR2", "user_defined2"),
                ("SIGCHLD", "child"),
            ];
            let daemon = include_str!("daemon.rs");
            for (signal, kind) in names {
                let handled = daemon.contains(&format!("SignalKind::{kind}()"));
                let documented = SIGNALS
                    .iter()
                    .any(|(s, _)| s.split(", ").any(|one| one == signal));
                assert_eq!(handled, documented, "{signal}");
            }
            let kinds = daemon.matches("SignalKind::").count();
            let listed: usize = SIGNALS.iter().map(|(s, _)| s.split(", ").count()).sum();
            assert_eq!(kinds, listed, "a SignalKind in daemon.rs is not documented");
        }

        #[test]
        fn documented_sub_arguments_are_exactly_those_parsed() {
            for f in FLAGS {
                match f.arg {
                    Arg::Optional(values) => {
                        for v in values {
                            match parse(&[f.flag, v.name]) {
                                CliOutcome::Run(cli) => assert_eq!(
                                    cli.messages.iter().any(|m| m.level == Level::Warning),
                                    v.deprecated.is_some(),
                                    "{} {}: deprecation warning",
                                    f.flag,
                                    v.name
                                ),
                                other => panic!("{} {}: {other:?}", f.flag, v.name),
                            }
                        }
                        // Prefix matching: a one-letter word is taken iff it
                        // starts a documented word.
                        for c in 'a'..='z' {
                            let word = c.to_string();
                            let taken = matches!(parse(&[f.flag, &word]), CliOutcome::Run(_));
                            let documented = values.iter().any(|v| v.name.starts_with(c));
                            assert_eq!(taken, documented, "{} {word}", f.flag);
                        }
                    }
                    Arg::File(_) => match parse(&[f.flag, "/tmp/some.conf"]) {
                        CliOutcome::Run(cli) => {
                            assert_eq!(cli.config_path, PathBuf::from("/tmp/some.conf"))
                        }
                        other => panic!("{}: {other:?}", f.flag),
                    },
                    Arg::None => {}
                }
            }
        }
    }
}
