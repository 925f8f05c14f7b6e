//! The reference (`conntrackd_config::reference`, from which the manual
//! page is generated) against the parser: no key is parsed that is not
//! documented in its section, and every documented default is the one the
//! parser applies. (That every documented key is parsed is checked next to
//! the reference, by `every_documented_key_is_accepted_with_its_example`.)

use conntrackd_config::reference::{KEYS, Key, KeyKind, REMOVED, REMOVED_IN, SECTIONS, TOP};
use conntrackd_config::{Config, ParseOptions, Parsed, parse_str_with};

fn parse(source: &str) -> Parsed {
    parse_str_with(
        source,
        ParseOptions {
            check_interfaces: false,
        },
    )
}

/// The parser's sources, in which key names appear in match arms.
const PARSER_SOURCES: &[(&str, &str)] = &[
    ("parser.rs", include_str!("../src/parser.rs")),
    ("general.rs", include_str!("../src/general.rs")),
    ("sync.rs", include_str!("../src/sync.rs")),
    ("helper.rs", include_str!("../src/helper.rs")),
];

/// Words the parser matches that are values, not keys.
const VALUE_WORDS: &[&str] = &["RR", "FIFO", "inet", "inet6", "tcp", "udp"];

/// Words of the 1.4.7 grammar that are not keys.
const GRAMMAR_WORDS: &[&str] = &[
    "for",
    "Accept",
    "Ignore",
    "From",
    "Userspace",
    "Kernelspace",
    "Default",
];

/// The word-like string literals the parser compares tokens with: those
/// of match arms (`"Key" =>`, `"A" | "B"`, `"Key" if …`, `(TokenKind::Str,
/// "Key")`) and of comparisons (`== "Key"`, `is_kw("Key")`).
fn handled_words(source: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = source;
    let mut offset = 0;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let word = &after[..end];
        let before = source[..offset + start].trim_end();
        let next = after[end + 1..].trim_start();
        let word_like = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let in_pattern = next.starts_with("=>")
            || (next.starts_with('|') && !next.starts_with("||"))
            || next.starts_with("if ")
            || before.ends_with("TokenKind::Keyword,")
            || before.ends_with("TokenKind::Str,")
            || before.ends_with("==")
            || before.ends_with("is_kw(");
        if word_like && in_pattern {
            words.push(word);
        }
        let consumed = start + 1 + end + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    words
}

#[test]
fn every_word_the_parser_handles_is_documented() {
    let mut problems = Vec::new();
    for (file, source) in PARSER_SOURCES {
        for word in handled_words(source) {
            let known = KEYS.iter().any(|k| k.name == word)
                || REMOVED.iter().any(|r| r.name == word)
                || GRAMMAR_WORDS.contains(&word)
                || VALUE_WORDS.contains(&word);
            if !known {
                problems.push(format!(
                    "src/{file} handles `{word}`, which no section of the reference documents: \
                     add it to `reference::KEYS` (or to VALUE_WORDS here if it is a value)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_word_scan_sees_the_key_arms() {
    // Guards the scan above against a change of the parser's style.
    let sync = PARSER_SOURCES[2].1;
    let words = handled_words(sync);
    for key in [
        "RefreshTime",
        "ReplicateLabels",
        "ErrorQueueLength",
        "KeyFile",
    ] {
        assert!(words.contains(&key), "{key} not seen in sync.rs: {words:?}");
    }
}

/// The openers from the top level down to `section`.
fn openers(section: &str) -> Vec<&'static str> {
    let mut path = Vec::new();
    let mut current = SECTIONS.iter().find(|s| s.id == section);
    while let Some(s) = current {
        if s.id == TOP {
            break;
        }
        path.push(s.sample);
        current = s
            .parent
            .and_then(|parent| SECTIONS.iter().find(|p| p.id == parent));
    }
    path.reverse();
    path
}

/// A file that writes `line` inside `section`, with the 1-based line of it.
fn embed(section: &str, line: &str) -> (String, usize) {
    let path = openers(section);
    let mut text = String::new();
    for opener in &path {
        text.push_str(opener);
        text.push_str(" {\n");
    }
    text.push_str(line);
    text.push('\n');
    for _ in &path {
        text.push_str("}\n");
    }
    (text, path.len() + 1)
}

#[test]
fn no_section_accepts_a_key_it_does_not_document() {
    let mut candidates: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    candidates.extend(REMOVED.iter().map(|r| r.name));
    for (_, source) in PARSER_SOURCES {
        candidates.extend(handled_words(source));
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut problems = Vec::new();
    for section in SECTIONS {
        for word in &candidates {
            let documented_here = KEYS
                .iter()
                .any(|k| k.section == section.id && k.name == *word)
                || (REMOVED_IN.contains(&section.id) && REMOVED.iter().any(|r| r.name == *word));
            if documented_here {
                continue;
            }
            let (text, line) = embed(section.id, word);
            let rejected = parse(&text).diagnostics.iter().any(|d| {
                d.line == line
                    && d.message
                        .starts_with(&format!("syntax error: unexpected `{word}', expected"))
                    && (d.message.contains("expected an item of")
                        || d.message.contains("expected a section"))
            });
            if !rejected {
                problems.push(format!(
                    "`{word}' is accepted in `{}' but not documented there",
                    section.id
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

const MULTICAST: &str = "Multicast {\nIPv4_address 225.0.0.50\nGroup 3780\nInterface lo\n}\n";

/// A valid file around each section's items; `@` is where a key goes,
/// after every block whose position the model records (channels, filters).
fn context(section: &str) -> Option<String> {
    let sync = |mode: &str, inside_mode: &str, channels: &str| {
        format!("Sync {{\n{channels}\nMode {mode} {{\n{inside_mode}\n}}\n}}\n")
    };
    Some(match section {
        "General" => "General {\n@\n}\n".to_owned(),
        "General.UNIX" => "General {\nUNIX {\n@\n}\n}\n".to_owned(),
        "General.Scheduler" => "General {\nScheduler {\n@\n}\n}\n".to_owned(),
        "General.Filter" => "General {\nFilter {\n@\n}\n}\n".to_owned(),
        "General.Filter.Address" => {
            "General {\nFilter {\nAddress Accept {\n@\n}\n}\n}\n".to_owned()
        }
        "General.Metrics" => "General {\nMetrics {\n@\n}\n}\n".to_owned(),
        "Sync" => sync("FTFW", "", &format!("{MULTICAST}@")),
        "Sync.Mode FTFW" => sync("FTFW", "@", MULTICAST),
        "Sync.Mode ALARM" => sync("ALARM", "@", MULTICAST),
        "Sync.Mode NOTRACK" => sync("NOTRACK", "@", MULTICAST),
        "Sync.Multicast" => sync("FTFW", "", &MULTICAST.replace("lo\n", "lo\n@\n")),
        "Sync.UDP" | "Sync.TCP" => sync(
            "FTFW",
            "",
            &format!(
                "{} {{\nIPv4_Destination_Address 10.0.0.2\nPort 3780\nInterface lo\n@\n}}",
                &section[5..]
            ),
        ),
        "Sync.Options" => sync("FTFW", "", &format!("{MULTICAST}Options {{\n@\n}}")),
        "Sync.Authentication" => sync("FTFW", "", &format!("{MULTICAST}Authentication {{\n@\n}}")),
        "Stats" => "Stats {\n@\n}\n".to_owned(),
        "Helper" => "Helper {\n@\n}\n".to_owned(),
        _ => return None,
    })
}

/// Keys whose model keeps what was written (`None` when absent), with the
/// value that is in force.
fn in_force(section: &str, name: &str) -> Option<fn(&Config) -> String> {
    match (section, name) {
        ("General.Scheduler", "Priority") => {
            Some(|c: &Config| format!("{:?}", c.general.scheduler.effective()))
        }
        ("Sync.Mode FTFW" | "Sync.Mode NOTRACK", "StartupResync") => {
            Some(|c: &Config| format!("{:?}", c.sync.as_ref().map(|s| s.mode.startup_resync())))
        }
        _ => None,
    }
}

/// The value a documented default stands for, if it is one that can be
/// written: a number, `on` or `off` (`on (30 seconds)`: `on`).
fn writable_default(key: &Key) -> Option<&'static str> {
    let first = key.default?.split(' ').next()?;
    let number = first.chars().all(|c| c.is_ascii_digit());
    let switch = matches!(first, "on" | "off") && key.value.contains("on|off");
    (number || switch).then_some(first)
}

#[test]
fn documented_defaults_are_the_parsed_defaults() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for key in KEYS.iter().filter(|k| k.kind == KeyKind::Setting) {
        let Some(value) = writable_default(key) else {
            continue;
        };
        let Some(context) = context(key.section) else {
            problems.push(format!(
                "{} {}: no context for section `{}' in tests/reference.rs",
                key.section, key.name, key.section
            ));
            continue;
        };
        let without = parse(&context.replace('@', ""));
        let with = parse(&context.replace('@', &format!("{} {value}", key.name)));
        let (Some(without), Some(with)) = (&without.config, &with.config) else {
            problems.push(format!(
                "{} {}: the context does not parse:\n{}{}",
                key.section,
                key.name,
                without.render_all(&context, "without"),
                with.render_all(&context, "with")
            ));
            continue;
        };
        let same = match in_force(key.section, key.name) {
            Some(value_in_force) => value_in_force(without) == value_in_force(with),
            None => without == with,
        };
        if !same {
            problems.push(format!(
                "{} {}: documented default {value}, but writing it changes the configuration",
                key.section, key.name
            ));
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 30, "only {checked} defaults checked");
}

#[test]
fn the_model_default_is_an_empty_file() {
    let empty = parse("").config.expect("an empty file is valid");
    assert_eq!(empty.general, conntrackd_config::General::default());
}
