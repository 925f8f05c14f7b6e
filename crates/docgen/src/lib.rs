//! Renders the manual pages and shell completions of conntrackd from the
//! code's own reference tables: `conntrackd_config::reference` (the
//! configuration keys) and `crates/conntrackd/src/cli_reference.rs` (the
//! command line), which is included here as a module; and the tables of
//! docs/metrics.md and docs/json.md from the counters' descriptions
//! (`crates/conntrackd/src/counters/`, included likewise).
//!
//! `cargo run -p docgen` writes the files; `cargo run -p docgen -- --check`
//! and the test `tests/up_to_date.rs` fail when the committed ones are stale.

use std::fmt::Write as _;

use conntrackd_config::reference::{
    self, Key, KeyKind, REMOVED, REMOVED_IN, SECTIONS, Section, TOP,
};

#[path = "../../conntrackd/src/cli_reference.rs"]
pub mod cli_reference;

pub mod counters;

pub mod counter_docs;

use cli_reference::{Arg, EXIT_STATUS, FLAGS, Flag, Group, SIGNALS};

/// Date printed in the manual pages' title lines. Update it when the
/// pages change in substance.
pub const DATE: &str = "2026-11-25";
/// Source field of the title lines.
const SOURCE: &str = concat!("conntrackd-rs ", env!("CARGO_PKG_VERSION"));
/// Default configuration file.
const CONFIG: &str = "/etc/conntrackd/conntrackd.conf";

/// Every generated file: (path relative to the repository root, content).
pub fn outputs() -> Vec<(&'static str, String)> {
    vec![
        ("man/conntrackd.8", conntrackd_8()),
        ("man/conntrackd.conf.5", conntrackd_conf_5()),
        ("completions/conntrackd.bash", bash()),
        ("completions/_conntrackd", zsh()),
        ("completions/conntrackd.fish", fish()),
        (
            "docs/metrics.md",
            counter_docs::splice(
                include_str!("../../../docs/metrics.md"),
                &counter_docs::metrics_table(),
            ),
        ),
        (
            "docs/json.md",
            counter_docs::splice(
                include_str!("../../../docs/json.md"),
                &counter_docs::json_table(),
            ),
        ),
    ]
}

// ---- roff ----------------------------------------------------------------

/// Escapes text for roff: backslashes, dashes (option dashes must stay
/// ASCII when copied), non-ASCII punctuation, and control characters at
/// the start of a line.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '…' => out.push_str("..."),
            '\'' if out.is_empty() || out.ends_with('\n') => out.push_str("\\&'"),
            '.' if out.is_empty() || out.ends_with('\n') => out.push_str("\\&."),
            // No hyphenation inside paths.
            '/' if out.is_empty() || out.ends_with([' ', '(']) => out.push_str("\\%/"),
            _ => out.push(c),
        }
    }
    out
}

/// Breaks escaped text into lines of at most 80 bytes, starting a new line
/// after each sentence (as roff expects).
fn fill(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.len() + 1 + word.len() > 80 {
            push_line(&mut out, &line);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        let sentence_end = (word.ends_with('.') && !word.ends_with("...")) || word.ends_with(".)");
        if sentence_end || word.ends_with(':') {
            push_line(&mut out, &line);
            line.clear();
        }
    }
    if !line.is_empty() {
        push_line(&mut out, &line);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    if line.starts_with(['.', '\'']) {
        out.push_str("\\&");
    }
    out.push_str(line);
    out.push('\n');
}

/// A paragraph of escaped text; `.PP` unless it directly follows a heading.
fn para(o: &mut String, escaped: &str) {
    let last = o.lines().last().unwrap_or("");
    if !(last.starts_with(".SH") || last.starts_with(".SS")) {
        o.push_str(".PP\n");
    }
    o.push_str(&fill(escaped));
}

/// A tagged paragraph.
fn tagged(o: &mut String, tag: &str, escaped: &str) {
    o.push_str(".TP\n");
    o.push_str(tag);
    o.push('\n');
    o.push_str(&fill(escaped));
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", esc(text))
}

fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", esc(text))
}

/// A flag with its argument, e.g. `-s [network|cache|…]`.
fn flag_synopsis(f: &Flag) -> String {
    let mut s = bold(f.flag);
    match f.arg {
        Arg::None => {}
        Arg::File(name) => {
            let _ = write!(s, " {}", italic(name));
        }
        Arg::Optional(values) => {
            let words: Vec<String> = values
                .iter()
                .filter(|v| v.deprecated.is_none())
                .map(|v| italic(v.name))
                .collect();
            let _ = write!(s, " [{}]", words.join("|"));
        }
    }
    if let Some(alias) = f.alias {
        let _ = write!(s, ", {}", bold(alias));
    }
    s
}

fn title(out: &mut String, name: &str, section: u8, manual: &str) {
    let _ = writeln!(
        out,
        ".\\\" Generated by docgen from the conntrackd-rs sources; do not edit."
    );
    let _ = writeln!(
        out,
        ".TH {} {section} \"{DATE}\" \"{SOURCE}\" \"{manual}\"",
        esc(name)
    );
}

// ---- conntrackd(8) -------------------------------------------------------

/// The manual page of the program.
pub fn conntrackd_8() -> String {
    let mut o = String::new();
    title(&mut o, "CONNTRACKD", 8, "System Manager's Manual");
    o.push_str(".SH NAME\nconntrackd \\- connection tracking table synchronisation daemon\n");
    o.push_str(".SH SYNOPSIS\n");
    let _ = writeln!(
        o,
        ".B conntrackd\n[{}] [{} {}]\n.br",
        bold("-d"),
        bold("-C"),
        italic("FILE")
    );
    let _ = writeln!(
        o,
        ".B conntrackd\n[{} {}] {} [{}]\n.br",
        bold("-C"),
        italic("FILE"),
        italic("client-command"),
        bold("--json")
    );
    let _ = writeln!(
        o,
        ".B conntrackd\n[{} {}] {}",
        bold("-C"),
        italic("FILE"),
        bold("--check")
    );
    o.push_str(".SH DESCRIPTION\n");
    for paragraph in DESCRIPTION_8 {
        para(&mut o, &esc(paragraph));
    }
    o.push_str(".SH OPTIONS\n");
    para(&mut o, &esc(CLI_QUIRKS));
    for (group, heading) in [
        (Group::General, "General options"),
        (Group::Client, "Client commands"),
        (Group::Extension, "Extensions (not in conntrackd 1.4.7)"),
    ] {
        let _ = writeln!(o, ".SS {heading}");
        for f in FLAGS.iter().filter(|f| f.group == group) {
            tagged(&mut o, &flag_synopsis(f), &esc(f.description));
            if let Arg::Optional(values) = f.arg {
                o.push_str(".RS\n");
                for v in values {
                    let mut text = esc(v.description);
                    if let Some(instead) = v.deprecated {
                        let _ = write!(
                            text,
                            " (deprecated, prints a warning; use {})",
                            bold(instead)
                        );
                    }
                    tagged(&mut o, &bold(v.name), &text);
                }
                o.push_str(".RE\n");
            }
        }
    }
    o.push_str(".SH EXIT STATUS\n");
    for (code, meaning) in EXIT_STATUS {
        tagged(&mut o, &bold(code), &esc(meaning));
    }
    o.push_str(".SH SIGNALS\n");
    for (signal, effect) in SIGNALS {
        tagged(&mut o, &bold(signal), &esc(effect));
    }
    o.push_str(".SH FILES\n");
    for (path, what) in FILES_8 {
        tagged(&mut o, &italic(path), &esc(what));
    }
    o.push_str(".SH EXAMPLES\n");
    for (what, commands) in EXAMPLES_8 {
        para(&mut o, &esc(what));
        o.push_str(".PP\n.RS\n.nf\n");
        for line in *commands {
            let _ = writeln!(o, "{}", esc(line));
        }
        o.push_str(".fi\n.RE\n");
    }
    o.push_str(".SH SEE ALSO\n");
    o.push_str(
        ".BR conntrackd.conf (5),\n.BR conntrack (8),\n.BR keepalived (8),\n.BR systemd.service (5)\n",
    );
    o
}

const DESCRIPTION_8: &[&str] = &[
    "conntrackd keeps the connection tracking tables of a cluster of Linux firewalls in sync, so that established connections survive when another firewall takes over. \
     It is a reimplementation of conntrackd 1.4.7 and accepts the same command line, configuration file and control socket requests, \
     and speaks the same sync protocol, so it can replace it and interoperate with it.",
    "The daemon follows the kernel's connection tracking events (or polls the table) and keeps the flows of its own firewall in the internal cache. \
     In sync mode it sends them to its peers over the channels of the Sync section, in the mode configured there (FTFW, ALARM or NOTRACK), \
     and keeps the flows received from the peers in the external cache. \
     When a firewall becomes the primary, its cluster manager (for instance keepalived) runs conntrackd -c to commit the external cache into the kernel table. \
     In stats mode the daemon replicates nothing and logs destroyed flows instead.",
    "Without a client command conntrackd runs the daemon: in the foreground, or with -d in the background. \
     With a client command it reads the configuration to find the daemon's control socket, sends the request, prints the reply and exits. \
     Only root may send requests.",
];

const CLI_QUIRKS: &str = "The command line is parsed like conntrackd 1.4.7 parses it: only the second character of an option is looked at \
    (options cannot be combined), an optional sub-argument is any following word that does not start with a dash and is matched by prefix \
    (in the order listed below, so -s c means cache), and of several client commands the last one is sent.";

const FILES_8: &[(&str, &str)] = &[
    (CONFIG, "Default configuration file."),
    (
        "/var/lock/conntrackd.lock",
        "Default lock file (General LockFile).",
    ),
    (
        "/var/log/conntrackd.log",
        "Log file of LogFile on in General.",
    ),
    (
        "/var/log/conntrackd-stats.log",
        "Log file of LogFile on in Stats.",
    ),
    (
        "/usr/share/doc/conntrackd/examples/sync/ftfw/conntrackd.conf",
        "A commented FTFW configuration.",
    ),
];

const EXAMPLES_8: &[(&str, &[&str])] = &[
    (
        "Check a configuration file without starting anything:",
        &["conntrackd -C /etc/conntrackd/conntrackd.conf --check"],
    ),
    (
        "Start the daemon in the background, then look at its caches and statistics:",
        &[
            "conntrackd -d",
            "conntrackd -i",
            "conntrackd -e",
            "conntrackd -s network",
        ],
    ),
    (
        "Take over as primary (typically from a keepalived notify script): commit the external cache, flush the internal one, resynchronise it with the kernel and send it to the peers:",
        &[
            "conntrackd -c",
            "conntrackd -f",
            "conntrackd -R",
            "conntrackd -B",
        ],
    ),
    (
        "Step down to backup: schedule the flush of the kernel table and ask the new primary for its flows:",
        &["conntrackd -t", "conntrackd -n"],
    ),
];

// ---- conntrackd.conf(5) --------------------------------------------------

/// The manual page of the configuration file.
pub fn conntrackd_conf_5() -> String {
    let mut o = String::new();
    title(&mut o, "CONNTRACKD.CONF", 5, "File Formats Manual");
    o.push_str(".SH NAME\nconntrackd.conf \\- configuration file of conntrackd\n");
    let _ = writeln!(o, ".SH SYNOPSIS\n{}", italic(CONFIG));
    o.push_str(".SH DESCRIPTION\n");
    for paragraph in DESCRIPTION_5 {
        para(&mut o, &esc(paragraph));
    }
    o.push_str(".SH SECTIONS\n");
    for s in SECTIONS {
        section_5(&mut o, s);
    }
    o.push_str(".SH REMOVED KEYS\n");
    para(
        &mut o,
        &esc(&format!(
            "These keys were removed in conntrackd 1.4.5 and are rejected by 1.4.7. \
             They are accepted, ignored and reported with a warning in {}.",
            REMOVED_IN
                .iter()
                .map(|id| heading_path(id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    );
    for r in REMOVED {
        tagged(
            &mut o,
            &format!("{} {}", bold(r.name), italic(r.value)),
            &esc(r.description),
        );
    }
    o.push_str(".SH FILES\n");
    let _ = writeln!(o, ".TP\n{}\nDefault configuration file.", italic(CONFIG));
    let _ = writeln!(
        o,
        ".TP\n{}\nA commented FTFW configuration.",
        italic("/usr/share/doc/conntrackd/examples/sync/ftfw/conntrackd.conf")
    );
    o.push_str(".SH EXAMPLES\n");
    para(
        &mut o,
        "Two firewalls replicating with FTFW over a dedicated link; on the other firewall the addresses are swapped.",
    );
    o.push_str(".PP\n.RS\n.nf\n");
    for line in EXAMPLE_5.lines() {
        let _ = writeln!(o, "{}", esc(line));
    }
    o.push_str(".fi\n.RE\n");
    o.push_str(".SH SEE ALSO\n.BR conntrackd (8),\n.BR conntrack (8),\n.BR protocols (5)\n");
    o
}

const DESCRIPTION_5: &[&str] = &[
    "conntrackd.conf configures conntrackd(8). It is read by the daemon at start-up and by every client command, which takes the control socket's path from it. \
     conntrackd -C FILE --check validates a file and reports every problem with its line and column.",
    "The file consists of sections holding keys and nested blocks: a key is followed by its value, a block by { and }. \
     Keys are case-sensitive; the items of a block may come in any order, and for a setting given twice the last one counts. \
     A # starts a comment that runs to the end of the line. \
     Booleans are on, off, yes or no in any case. Numbers are unsigned decimal. \
     Paths are absolute and unquoted, and end only at a space, a newline or a double quote (so write a space before a closing brace or a comment). \
     Names (interfaces, protocols, helpers) cannot be spelled like a keyword, a boolean, a number or a hexadecimal word such as dead.",
    "Keys marked as extensions are not understood by conntrackd 1.4.7. \
     Legacy spellings that 1.4.7 rejects are accepted with a warning that names the replacement.",
];

/// `Sync / Mode FTFW { … }`: the first word of each parent, then the syntax.
fn heading_path(id: &str) -> String {
    let mut parts = Vec::new();
    let mut current = reference::section(id);
    let mut first = true;
    while let Some(s) = current {
        if s.id == TOP {
            break;
        }
        if first {
            parts.push(s.syntax.to_owned());
            first = false;
        } else {
            parts.push(s.syntax.split(' ').next().unwrap_or(s.syntax).to_owned());
        }
        current = s.parent.and_then(reference::section);
    }
    parts.reverse();
    parts.join(" / ")
}

fn section_5(o: &mut String, s: &Section) {
    let heading = if s.id == TOP {
        "Top level".to_owned()
    } else {
        heading_path(s.id)
    };
    let _ = writeln!(o, ".SS \"{}\"", esc(&heading).replace('"', "\\(dq"));
    let mut text = esc(s.description);
    if s.extension {
        text.push_str(" (Extension.)");
    }
    para(o, &text);
    for k in reference::keys_of(s.id) {
        key_5(o, k);
    }
}

fn key_5(o: &mut String, k: &Key) {
    let mut text = Vec::new();
    match k.kind {
        KeyKind::Alias(of) => text.push(format!("Another spelling of {}.", bold(of))),
        KeyKind::Legacy(modern) => text.push(format!(
            "Legacy spelling, rejected by conntrackd 1.4.7; accepted with a warning as {}.",
            bold(modern)
        )),
        KeyKind::Ignored | KeyKind::Obsolete => {
            text.push("Accepted and ignored, with a warning.".to_owned())
        }
        KeyKind::Setting | KeyKind::Block(_) => {}
    }
    if !k.description.is_empty() {
        text.push(esc(k.description));
    }
    if let Some(default) = k.default {
        text.push(format!("Default: {}.", esc(default)));
    }
    if k.extension {
        text.push("(Extension.)".to_owned());
    }
    tagged(
        o,
        &format!("{} {}", bold(k.name), italic(k.value)),
        &text.join(" "),
    );
}

/// The example of conntrackd.conf(5).
const EXAMPLE_5: &str = "General {
	HashSize 32768
	HashLimit 131072
	Syslog on
	LockFile /var/lock/conntrackd.lock
	UNIX {
		Path /var/run/conntrackd.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter From Kernelspace {
		Protocol Accept { TCP UDP ICMP }
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address 192.168.100.1 # this firewall's sync address
			IPv6_address ::1
		}
	}
}
Sync {
	Mode FTFW {
		StartupResync on
	}
	UDP {
		IPv4_address 192.168.100.1
		IPv4_Destination_Address 192.168.100.2
		Port 3780
		Interface eth1
	}
}";

// ---- completions ---------------------------------------------------------

/// Words of an optional sub-argument, without deprecated spellings.
fn words(values: &[cli_reference::Value]) -> Vec<&'static str> {
    values
        .iter()
        .filter(|v| v.deprecated.is_none())
        .map(|v| v.name)
        .collect()
}

/// The first sentence of a description, for completion menus.
fn summary(text: &str) -> &str {
    match text.find(". ") {
        Some(end) => &text[..end],
        None => text.trim_end_matches('.'),
    }
}

/// Every flag and alias.
fn all_flags() -> Vec<&'static str> {
    FLAGS
        .iter()
        .flat_map(|f| [Some(f.flag), f.alias])
        .flatten()
        .collect()
}

/// bash: `/usr/share/bash-completion/completions/conntrackd`.
pub fn bash() -> String {
    let mut o = String::new();
    o.push_str("# bash completion for conntrackd.\n# Generated by docgen from the conntrackd-rs sources; do not edit.\n\n");
    o.push_str("_conntrackd()\n{\n    local cur prev\n    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n");
    o.push_str("    case \"$prev\" in\n");
    for f in FLAGS {
        match f.arg {
            Arg::None => {}
            Arg::File(_) => {
                let _ = writeln!(
                    o,
                    "        {})\n            compopt -o filenames 2>/dev/null\n            COMPREPLY=( $(compgen -f -- \"$cur\") )\n            return 0\n            ;;",
                    f.flag
                );
            }
            Arg::Optional(values) => {
                let _ = writeln!(
                    o,
                    "        {})\n            if [[ \"$cur\" != -* ]]; then\n                COMPREPLY=( $(compgen -W \"{}\" -- \"$cur\") )\n                return 0\n            fi\n            ;;",
                    f.flag,
                    words(values).join(" ")
                );
            }
        }
    }
    o.push_str("    esac\n");
    let _ = writeln!(
        o,
        "    COMPREPLY=( $(compgen -W \"{}\" -- \"$cur\") )\n}}\ncomplete -F _conntrackd conntrackd",
        all_flags().join(" ")
    );
    o
}

/// Quotes text for a zsh `_arguments` description inside single quotes.
fn zsh_desc(text: &str) -> String {
    summary(text)
        .replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

/// zsh: `/usr/share/zsh/vendor-completions/_conntrackd`.
pub fn zsh() -> String {
    let mut o = String::new();
    o.push_str("#compdef conntrackd\n# zsh completion for conntrackd.\n# Generated by docgen from the conntrackd-rs sources; do not edit.\n\n");
    o.push_str("_arguments \\\n");
    let mut specs = Vec::new();
    for f in FLAGS {
        for name in [Some(f.flag), f.alias].into_iter().flatten() {
            let desc = zsh_desc(f.description);
            let action = match f.arg {
                Arg::None => String::new(),
                Arg::File(what) => format!(":{}:_files", what.to_lowercase()),
                Arg::Optional(values) => format!("::{}:({})", "word", words(values).join(" ")),
            };
            specs.push(format!("  '{name}[{desc}]{action}'"));
        }
    }
    o.push_str(&specs.join(" \\\n"));
    o.push('\n');
    o
}

/// Quotes text for fish inside single quotes.
fn fish_quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// fish: `/usr/share/fish/vendor_completions.d/conntrackd.fish`.
pub fn fish() -> String {
    let mut o = String::new();
    o.push_str("# fish completion for conntrackd.\n# Generated by docgen from the conntrackd-rs sources; do not edit.\n\n");
    o.push_str("complete -c conntrackd -f\n");
    for f in FLAGS {
        for name in [Some(f.flag), f.alias].into_iter().flatten() {
            let option = match name.strip_prefix("--") {
                Some(long) => format!("-l {long}"),
                None => format!("-s {}", name.trim_start_matches('-')),
            };
            let arg = match f.arg {
                Arg::File(_) => " -r -F",
                _ => "",
            };
            let _ = writeln!(
                o,
                "complete -c conntrackd {option}{arg} -d '{}'",
                fish_quote(summary(f.description))
            );
        }
        if let Arg::Optional(values) = f.arg {
            for v in values.iter().filter(|v| v.deprecated.is_none()) {
                let _ = writeln!(
                    o,
                    "complete -c conntrackd -n '__fish_prev_arg_in {}' -a {} -d '{}'",
                    f.flag,
                    v.name,
                    fish_quote(v.description)
                );
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrackd_config::reference::KEYS;

    #[test]
    fn roff_output_is_ascii_and_has_no_stray_requests() {
        for (path, text) in outputs() {
            if path.starts_with("docs/") {
                continue;
            }
            assert!(text.is_ascii(), "{path} has non-ASCII text");
            if path.starts_with("man/") {
                for line in text.lines() {
                    // Only requests we emit may start a line with a dot.
                    if let Some(request) = line.strip_prefix('.') {
                        let name = request.split(' ').next().unwrap_or("");
                        assert!(
                            [
                                "\\\"", "TH", "SH", "SS", "PP", "TP", "RS", "RE", "nf", "fi", "B",
                                "BR", "br"
                            ]
                            .contains(&name),
                            "{path}: unexpected request in {line:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_key_and_flag_appears_in_the_pages() {
        let conf = conntrackd_conf_5();
        for k in KEYS {
            assert!(conf.contains(&bold(k.name)), "{} missing", k.name);
        }
        let page = conntrackd_8();
        for f in FLAGS {
            assert!(page.contains(&bold(f.flag)), "{} missing", f.flag);
        }
    }

    #[test]
    fn the_example_is_a_valid_configuration() {
        let parsed = conntrackd_config::parse_str_with(
            EXAMPLE_5,
            conntrackd_config::ParseOptions {
                check_interfaces: false,
            },
        );
        assert!(
            parsed.diagnostics.is_empty(),
            "{}",
            parsed.render_all(EXAMPLE_5, "example")
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(esc(".x -s a\\b…"), "\\&.x \\-s a\\eb...");
        assert_eq!(esc("see /etc/x"), "see \\%/etc/x");
        assert_eq!(fill("a b. c"), "a b.\nc\n");
        assert_eq!(
            fill(&"word ".repeat(30)).lines().map(str::len).max(),
            Some(79)
        );
        assert_eq!(zsh_desc("Show [x]: y. More"), "Show \\[x\\]\\: y");
    }
}
