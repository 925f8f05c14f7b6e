//! End-to-end tests of parse_str: accepted files, legacy mappings, quirks.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use conntrackd_config::*;

fn parse(src: &str) -> Parsed {
    parse_str_with(
        src,
        ParseOptions {
            check_interfaces: false,
        },
    )
}

fn ok(src: &str) -> (Config, Vec<Diagnostic>) {
    let p = parse(src);
    let errors: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(src, "t"))
        .collect();
    assert!(errors.is_empty(), "unexpected errors:\n{}", errors.join(""));
    (p.config.expect("config"), p.diagnostics)
}

fn warnings(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.message.clone())
        .collect()
}

/// What the daemon would leave unused: warnings when it starts, errors
/// (exit status 2) at `--check`.
fn ignored(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Ignored)
        .map(|d| d.message.clone())
        .collect()
}

fn errors(src: &str) -> Vec<Diagnostic> {
    let p = parse(src);
    assert!(p.config.is_none(), "expected rejection of {src:?}");
    p.diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect()
}

const REFERENCE: &str = include_str!("../../../fuzz/corpus/config_parse/04-reference-ftfw.conf");

fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn seed_config_loads_with_legacy_checksum_warning() {
    let path = crate_path("tests/data/seed-alarm.conf");
    let (src, parsed) = load(&path).expect("read seed");
    let config = parsed.config.clone().expect("seed must load");
    let sync = config.sync.expect("sync");
    assert_eq!(sync.mode, SyncMode::Alarm);
    assert_eq!(
        (sync.refresh_time, sync.cache_timeout, sync.commit_timeout),
        (15, 180, 180)
    );
    assert_eq!(sync.channels.len(), 1);
    let ch = &sync.channels[0];
    assert_eq!(ch.address, Some(IpAddr::V4(Ipv4Addr::new(225, 0, 0, 50))));
    assert_eq!(ch.ipv4_interface, Some(Ipv4Addr::new(192, 168, 100, 100)));
    assert_eq!(ch.port, 3780);
    assert!(ch.checksum && ch.default);
    assert_eq!(config.general.hash_size, 8192);
    assert_eq!(config.general.netlink_buffer_size, 262_142);
    assert_eq!(config.general.netlink_buffer_size_max_growth, 655_355);
    assert_eq!(
        config.general.unix_path,
        Some(PathBuf::from("/tmp/sync.sock"))
    );
    let checksum = parsed
        .diagnostics
        .iter()
        .find(|d| d.message.contains("Checksum"))
        .expect("legacy Checksum warning");
    assert_eq!(
        (checksum.severity, checksum.line, checksum.column),
        (Severity::Warning, 67, 2)
    );
    assert!(
        checksum
            .render(&src, "seed.conf")
            .starts_with("seed.conf:67:2: warning: ")
    );
}

#[test]
fn reference_config_loads() {
    let (c, d) = ok(REFERENCE);
    assert!(warnings(&d).is_empty(), "{d:?}");
    let sync = c.sync.expect("sync");
    assert_eq!(
        sync.mode,
        SyncMode::Ftfw {
            resend_queue_size: 131_072,
            ack_window_size: 300,
            disable_external_cache: false,
            startup_resync: None
        }
    );
    assert!(sync.mode_specified);
    assert_eq!(sync.channels[0].snd_buf, Some(1_249_280));
    assert_eq!(sync.channels[0].interface.as_deref(), Some("sync0"));
    let g = c.general;
    assert!(!g.systemd);
    assert_eq!(g.log_file, LogTarget::Path("/tmp/ct/ftfw-a.log".into()));
    assert_eq!(g.lock_file, PathBuf::from("/tmp/ct/ftfw-a.lock"));
    assert_eq!(g.filter.protocol, Some((Policy::Accept, vec![6, 17, 1])));
    let (policy, nets) = g.filter.address.expect("address filter");
    assert_eq!(policy, Policy::Ignore);
    assert_eq!(nets.len(), 2);
    assert!(nets.iter().all(IpNet::is_host));
}

#[test]
fn debian_examples_load() {
    let dir = Path::new("/usr/share/doc/conntrackd/examples");
    if !dir.exists() {
        eprintln!("SKIPPED: {} not present", dir.display());
        return;
    }
    let mut seen = 0;
    for rel in [
        "stats/conntrackd.conf",
        "sync/alarm/conntrackd.conf",
        "sync/ftfw/conntrackd.conf",
        "sync/notrack/conntrackd.conf",
    ] {
        let path = dir.join(rel);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                let gz = dir.join(format!("{rel}.gz"));
                let out = std::process::Command::new("zcat")
                    .arg(&gz)
                    .output()
                    .expect("zcat");
                out.stdout
            }
        };
        let src = String::from_utf8(bytes).expect("utf8");
        let p = parse(&src);
        assert!(p.config.is_some(), "{rel}: {}", p.render_all(&src, rel));
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn empty_file_is_all_defaults() {
    let (c, _) = ok("");
    assert_eq!(c.general, General::default());
    assert_eq!(
        c.general.lock_file,
        PathBuf::from("/var/lock/conntrackd.lock")
    );
    assert!(c.general.systemd);
    assert!(c.sync.is_none() && c.stats.is_none());
}

#[test]
fn zero_means_default() {
    let (c, _) =
        ok("General { HashSize 0 HashLimit 0 EventIterationLimit 0 NetlinkOverrunResync 0 }\n");
    assert_eq!(
        (
            c.general.hash_size,
            c.general.hash_limit,
            c.general.event_iteration_limit
        ),
        (65536, 262_144, Some(100))
    );
    assert_eq!(c.general.netlink_overrun_resync, Some(30));
    let (c, _) = ok("General { NetlinkOverrunResync off }");
    assert_eq!(c.general.netlink_overrun_resync, None);
    let (c, _) = ok("General { NetlinkOverrunResync 7 }");
    assert_eq!(c.general.netlink_overrun_resync, Some(7));
}

#[test]
fn last_occurrence_wins_and_logfile_off_is_noop() {
    let (c, _) = ok("General { HashSize 5 HashSize 6 LogFile on LogFile off }");
    assert_eq!(c.general.hash_size, 6);
    assert_eq!(c.general.log_file, LogTarget::Default);
}

#[test]
fn booleans_any_case_keywords_case_sensitive() {
    let (c, _) = ok("General { Systemd No NetlinkEventsReliable oN }");
    assert!(!c.general.systemd && c.general.netlink_events_reliable);
    let e = errors("general {\n}\n");
    assert_eq!(
        e[0].c_syntax_error().as_deref(),
        Some("parsing config file in line (1), symbol 'general': syntax error")
    );
    assert_eq!(e[0].help.as_deref(), Some("did you mean `General'?"));
    let e = errors("General { Systemd true }");
    assert_eq!(e[0].symbol.as_deref(), Some("true"));
}

#[test]
fn names_colliding_with_other_tokens_are_syntax_errors() {
    for (src, symbol) in [
        ("Sync { Multicast { Interface dead } }", "dead"),
        ("Sync { Multicast { Interface 0eth } }", "0e"),
        ("Sync { Multicast { Interface on } }", "on"),
        ("Sync { Multicast { Interface alarm } }", "alarm"),
    ] {
        let e = errors(src);
        assert_eq!(e[0].symbol.as_deref(), Some(symbol), "{src}");
    }
}

#[test]
fn mode_names_and_legacy_modes() {
    let (c, d) =
        ok("Sync { Mode nack { } Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } }");
    assert!(matches!(c.sync.expect("sync").mode, SyncMode::Ftfw { .. }));
    assert!(warnings(&d).contains(
        &"Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.".to_owned()
    ));
    let (c, d) = ok(
        "Sync { Mode PersistenT { } Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } }",
    );
    assert_eq!(c.sync.expect("sync").mode, SyncMode::Alarm);
    assert!(warnings(&d)[0].starts_with("Now `persistent' mode is called `alarm'"));
    let e = errors("Sync { Mode persistent { } }");
    assert_eq!(e[0].symbol.as_deref(), Some("persistent"));
}

#[test]
fn mode_priority_not_file_order() {
    let ch = "Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 }";
    let (c, _) = ok(&format!(
        "Sync {{ Mode NOTRACK {{ }} Mode ALARM {{ }} {ch} }}"
    ));
    assert_eq!(c.sync.expect("sync").mode, SyncMode::Alarm);
    let (c, _) = ok(&format!(
        "Sync {{ Mode NOTRACK {{ StartupResync on }} Mode FTFW {{ }} {ch} }}"
    ));
    assert!(matches!(
        c.sync.expect("sync").mode,
        SyncMode::Ftfw {
            startup_resync: Some(true),
            ..
        }
    ));
    let (c, d) = ok(&format!("Sync {{ {ch} }}"));
    let sync = c.sync.expect("sync");
    assert!(!sync.mode_specified);
    assert!(matches!(sync.mode, SyncMode::Ftfw { .. }));
    assert!(
        warnings(&d)
            .contains(&"No synchronization mode specified. Defaulting to FT-FW mode.".to_owned())
    );
}

#[test]
fn keys_only_valid_in_their_mode_block() {
    let e = errors("Sync { Mode ALARM { ResendQueueSize 5 } }");
    assert_eq!(e[0].symbol.as_deref(), Some("ResendQueueSize"));
    let e = errors("HashSize 5");
    assert_eq!(e[0].symbol.as_deref(), Some("HashSize"));
    assert_eq!(
        e[0].message,
        "syntax error: unexpected `HashSize', expected a section (`General', `Sync', `Stats' or `Helper')"
    );
    assert_eq!(
        e[0].help.as_deref(),
        Some("`HashSize' must be inside a section such as `General { … }'")
    );
}

/// On unless written off (docs/migration.md); ALARM never asks.
#[test]
fn startup_resync_is_on_unless_written_off() {
    let ch = "Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 }";
    for (mode, written, expected) in [
        ("FTFW", "", true),
        ("FTFW", "StartupResync off", false),
        ("FTFW", "StartupResync on", true),
        ("NOTRACK", "", true),
        ("NOTRACK", "StartupResync no", false),
        ("ALARM", "", false),
    ] {
        let (c, _) = ok(&format!("Sync {{ Mode {mode} {{ {written} }} {ch} }}"));
        let sync = c.sync.as_ref().expect("sync");
        assert_eq!(sync.mode.startup_resync(), expected, "{mode} {written}");
        let summary = check_summary(&c);
        let line = summary
            .lines()
            .find(|l| l.starts_with("startup resync: "))
            .unwrap_or("no startup resync line");
        match (mode, written) {
            ("ALARM", _) => assert_eq!(line, "no startup resync line"),
            (_, "") => assert_eq!(
                line,
                "startup resync: on (StartupResync not written: on here, off in 1.4.7)"
            ),
            _ => assert_eq!(
                line,
                format!("startup resync: {}", if expected { "on" } else { "off" })
            ),
        }
    }
}

#[test]
fn notrack_udp_and_commit_timeout_conflict() {
    let src = "Sync { Mode NOTRACK { DisableInternalCache on DisableExternalCache on CommitTimeout 5 } UDP Default { IPv4_address 10.0.0.1 IPv4_Destination_Address 10.0.0.2 Port 3781 Interface lo Checksum off } }";
    let (c, d) = ok(src);
    let sync = c.sync.expect("sync");
    assert_eq!(sync.commit_timeout, 0);
    assert_eq!(
        sync.mode,
        SyncMode::Notrack {
            disable_internal_cache: true,
            disable_external_cache: true,
            startup_resync: None
        }
    );
    let ch = &sync.channels[0];
    assert_eq!(
        (ch.kind, ch.port, ch.checksum, ch.default),
        (ChannelKind::Udp, 3781, false, true)
    );
    assert_eq!(ch.destination, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
    assert!(ignored(&d).iter().any(|w| w.starts_with("`CommitTimeout' can't be combined with `DisableExternalCache'")));
}

#[test]
fn tcp_channel_options_and_expectations() {
    let src = "Sync { Mode NOTRACK { StartupResync yes } TCP { IPv4_address 1.1.1.1 IPv4_Destination_Address 1.1.1.2 Port 3782 Interface lo ErrorQueueLength 7 } Options { TCPWindowTracking yes ExpectationSync { ftp sip q.931 h.245 ras } } }";
    let (c, _) = ok(src);
    let sync = c.sync.expect("sync");
    assert!(sync.tcp_window_tracking);
    assert_eq!(sync.error_queue_length, 7);
    assert_eq!(
        sync.expectation_sync,
        ExpectSync::Helpers(vec![
            "ftp".into(),
            "sip".into(),
            "q.931".into(),
            "h.245".into(),
            "ras".into()
        ])
    );
    let (c, _) = ok(
        "Sync { Mode FTFW {} Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } Options { ExpectationSync on } }",
    );
    assert_eq!(c.sync.expect("sync").expectation_sync, ExpectSync::All);
}

#[test]
fn legacy_mappings() {
    let src = include_str!("../../../fuzz/corpus/config_parse/10-legacy.conf");
    let (c, d) = ok(src);
    let w = warnings(&d);
    for key in [
        "McastSndSocketBuffer",
        "McastRcvSocketBuffer",
        "Replicate",
        "CacheWriteThrough",
        "StripNAT",
        "DestroyTimeout",
        "IgnoreTrafficFor",
        "IgnoreProtocol",
    ] {
        assert!(
            w.iter().any(|m| m.contains(&format!("`{key}'"))),
            "no warning for {key}: {w:?}"
        );
    }
    let sync = c.sync.expect("sync");
    assert!(sync.mode.external_cache_disabled());
    assert_eq!(
        (sync.channels[0].snd_buf, sync.channels[0].rcv_buf),
        (Some(100), Some(100))
    );
    let f = c.general.filter;
    assert_eq!(f.state, Some((Policy::Accept, vec![3, 7])));
    assert_eq!(f.protocol, Some((Policy::Ignore, vec![17, 1])));
    assert_eq!(
        f.address.expect("addr").1[0].addr,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    );
}

#[test]
fn more_legacy_mappings() {
    let src = "Sync {\n Mode FTFW { ResendBufferSize 1000 }\n Checksum off\n Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 ListenTo 10.0.0.1 Family IPv4 }\n Multicast { IPv4_address 225.0.0.2 Interface lo Group 2 Checksum on }\n RelaxTransitions\n DelayDestroyMessages\n}\nGeneral { LogFileBufferSize 5 }\n";
    let (c, d) = ok(src);
    let w = warnings(&d);
    for key in [
        "ResendBufferSize",
        "Checksum",
        "ListenTo",
        "Family",
        "RelaxTransitions",
        "DelayDestroyMessages",
        "LogFileBufferSize",
    ] {
        assert!(
            w.iter().any(|m| m.contains(&format!("`{key}'"))),
            "no warning for {key}: {w:?}"
        );
    }
    let checksum = d
        .iter()
        .find(|x| x.message.contains("`Checksum'"))
        .expect("checksum");
    assert_eq!((checksum.line, checksum.column), (3, 2));
    let sync = c.sync.expect("sync");
    // It counted bytes (0.9.x): not carried over as an object count.
    assert!(matches!(
        sync.mode,
        SyncMode::Ftfw {
            resend_queue_size: 131_072,
            ..
        }
    ));
    let resend = d
        .iter()
        .find(|x| x.message.starts_with("`ResendBufferSize'"))
        .expect("ResendBufferSize warning");
    assert_eq!(resend.severity, Severity::Warning);
    assert!(
        resend.message.contains("counted bytes"),
        "{}",
        resend.message
    );
    assert_eq!(
        checksum.message,
        "`Checksum' directly in `Sync' is a legacy option rejected by conntrackd 1.4.7; applied to every channel block that does not set its own"
    );
    assert!(
        !sync.channels[0].checksum,
        "legacy Sync Checksum applies to channels"
    );
    assert!(sync.channels[1].checksum, "explicit channel Checksum wins");
    assert_eq!(
        sync.channels[0].ipv4_interface,
        Some(Ipv4Addr::new(10, 0, 0, 1))
    );
}

#[test]
fn still_accepted_deprecated_options_warn() {
    let (c, d) = ok(
        "General { Nice -1 UNIX { Backlog 5 Path /tmp/a.sock } }\nSync { Mode FTFW { } Multicast { IPv6_interface ::1 IPv4_address 225.0.0.1 Interface lo Group 1 } }",
    );
    let w = warnings(&d);
    assert!(w.contains(&"deprecated nice configuration, ignoring. The nice value can be set externally with nice(1) and renice(1).".to_owned()));
    assert!(w.contains(&"deprecated unix backlog configuration, ignoring.".to_owned()));
    assert!(w.contains(&"`IPv6_interface' not required, ignoring".to_owned()));
    assert_eq!(c.general.unix_path, Some(PathBuf::from("/tmp/a.sock")));
    let e = errors("General { Nice 5 }");
    assert_eq!(e[0].symbol.as_deref(), Some("5"));
}

#[test]
fn path_quirks() {
    let (c, d) = ok("General { LockFile /tmp/x.lock#c }");
    assert_eq!(c.general.lock_file, PathBuf::from("/tmp/x.lock#c"));
    assert_eq!(
        d.iter().filter(|x| x.severity == Severity::Warning).count(),
        1
    );
    let (c, _) = ok("General {\r\n LockFile /tmp/crlf.lock\r\n}\r\n");
    assert_eq!(c.general.lock_file, PathBuf::from("/tmp/crlf.lock\r"));
    let e = errors("General { UNIX { Path /x.sock}\n}\n");
    assert_eq!(
        e[0].c_syntax_error().as_deref(),
        Some("parsing config file in line (3), symbol '': syntax error")
    );
    let e = errors("General { LockFile \"/tmp/x\" }");
    assert_eq!(e[0].symbol.as_deref(), Some("\""));
    let e = errors("General { UNIX { Path relative.sock } }");
    assert_eq!(
        e[0].help.as_deref(),
        Some("paths must be absolute (start with `/')")
    );
}

#[test]
fn path_length_limits() {
    let long = format!("/{}", "a".repeat(256));
    let e = errors(&format!("General {{ LogFile {long} }}"));
    assert_eq!(e[0].message, "LogFile path is longer than 256 characters");
    let e = errors(&format!("General {{ LockFile {long} }}"));
    assert_eq!(e[0].message, "LockFile path is longer than 256 characters");
    let e = errors(&format!("Stats {{ LogFile {long} }}"));
    assert_eq!(
        e[0].message,
        "stats LogFile path is longer than 256 characters"
    );
    let e = errors(&format!(
        "General {{ UNIX {{ Path /{} }} }}",
        "a".repeat(107)
    ));
    assert_eq!(e[0].message, "Path is longer than 107 characters");
    ok(&format!(
        "General {{ UNIX {{ Path /{} }} }}",
        "a".repeat(106)
    ));
}

#[test]
fn fatal_value_checks() {
    assert_eq!(
        errors("General { PollSecs 0 }")[0].message,
        "`PollSecs' clause must be > 0"
    );
    assert_eq!(
        errors("General { Scheduler { Type DEADLINE } }")[0].message,
        "unknown scheduler `DEADLINE'"
    );
    assert_eq!(
        errors("General { Scheduler { Priority 100 } }")[0].message,
        "`Priority' must be [0, 99]"
    );
    assert!(
        errors("Sync { UDP { Port 65536 } }")[0]
            .message
            .contains("not a valid port")
    );
    assert!(
        errors("General { HashSize 99999999999 }")[0]
            .message
            .contains("too large")
    );
    let (c, _) = ok("General { Scheduler { Type fifo Priority 10 } PollSecs 3 }");
    assert_eq!(c.general.scheduler.effective(), (SchedulerType::Fifo, 10));
    assert_eq!(c.general.poll_secs, Some(3));
    assert_eq!(Scheduler::default().effective(), (SchedulerType::Rr, 99));
}

#[test]
fn channel_conflicts() {
    let e = errors(include_str!(
        "../../../fuzz/corpus/config_parse/12-mixed-channels.conf"
    ));
    assert_eq!(
        e[0].message,
        "cannot use `UDP' with other dedicated link protocols!"
    );
    let e = errors(include_str!(
        "../../../fuzz/corpus/config_parse/13-five-channels.conf"
    ));
    assert_eq!(
        e[0].message,
        "too many dedicated links in the configuration file (Maximum: 4)"
    );
    assert_eq!((e[0].line, e[0].column), (6, 2));
    let e = errors("Sync { Mode ALARM { } }\nStats { }\n");
    assert_eq!(
        e[0].message,
        "cannot use both `Stats' and `Sync' clauses in conntrackd.conf"
    );
    assert_eq!(e[0].line, 2);
    let e = errors("Sync { Mode FTFW { } Multicast { IPv4_address 225.0.0.1 Group 3 } }");
    assert!(e[0].message.contains("no `Interface'"));
    let e = errors("Sync { Mode FTFW { } Multicast { Interface lo Group 3 } }");
    assert_eq!(e[0].message, "`Multicast' channel has no group address");
}

/// The block VyOS writes when `listen-address` is not set: no local
/// address. 1.4.7 binds the wildcard of the destination's family.
#[test]
fn unicast_channels_without_a_local_address_bind_any_address() {
    for (kind, peer, any) in [
        ("UDP", "IPv4_Destination_Address 10.0.0.2", "0.0.0.0"),
        ("TCP", "IPv4_Destination_Address 10.0.0.2", "0.0.0.0"),
        ("UDP", "IPv6_Destination_Address fe80::2", "::"),
        ("TCP", "IPv6_Destination_Address fe80::2", "::"),
    ] {
        let text = format!(
            "Sync {{ Mode FTFW {{ }} {kind} {{ {peer} Port 3780 Interface eth1 SndSocketBuffer 1249280 RcvSocketBuffer 1249280 Checksum on }} }}"
        );
        let (c, d) = ok(&text);
        assert!(warnings(&d).is_empty(), "{text}: {d:?}");
        let channel = &c.sync.expect("sync").channels[0];
        assert_eq!(channel.address, Some(any.parse().expect("ip")), "{text}");
        let v4 = any == "0.0.0.0";
        assert_eq!(
            channel.family,
            Some(if v4 { Family::Ipv4 } else { Family::Ipv6 })
        );
    }
    // Several links, each on its own.
    let (c, _) = ok(
        "Sync { Mode FTFW { } UDP Default { IPv4_Destination_Address 10.0.0.2 Port 3780 Interface eth1 } \
         UDP { IPv4_address 10.1.0.1 IPv4_Destination_Address 10.1.0.2 Port 3781 Interface eth2 } }",
    );
    let channels = c.sync.expect("sync").channels;
    assert_eq!(channels[0].address, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    assert_eq!(channels[1].address, Some("10.1.0.1".parse().expect("ip")));
    // An invalid local address is ignored, as in 1.4.7: any address then.
    let (c, d) = ok(
        "Sync { Mode FTFW { } UDP { IPv4_address 300.0.0.1 IPv4_Destination_Address 10.0.0.2 Port 3780 Interface eth1 } }",
    );
    assert_eq!(
        c.sync.expect("sync").channels[0].address,
        Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    );
    assert!(
        d.iter()
            .any(|d| d.message == "300.0.0.1 is not a valid IPv4 address")
    );
}

#[test]
fn unicast_channels_need_a_peer_of_their_own_family() {
    for kind in ["UDP", "TCP"] {
        let e = errors(&format!(
            "Sync {{ Mode FTFW {{ }} {kind} {{ IPv4_address 10.0.0.1 Port 3780 Interface eth1 }} }}"
        ));
        assert_eq!(
            e[0].message,
            format!("`{kind}' channel has no destination address")
        );
        let e = errors(&format!(
            "Sync {{ Mode FTFW {{ }} {kind} {{ IPv4_address 10.0.0.1 IPv6_Destination_Address fe80::2 Port 3780 Interface eth1 }} }}"
        ));
        assert_eq!(
            e[0].message,
            format!(
                "`{kind}' channel mixes IPv4 and IPv6: local address 10.0.0.1, destination fe80::2"
            )
        );
    }
}

#[test]
fn several_defaults_warn_and_first_is_default_otherwise() {
    let two = "Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } Multicast { IPv4_address 225.0.0.2 Interface lo Group 2 }";
    let (c, d) = ok(&format!("Sync {{ Mode FTFW {{ }} {two} }}"));
    let sync = c.sync.expect("sync");
    assert_eq!(sync.default_channel(), 0);
    assert!(warnings(&d).is_empty());
    let (c, d) = ok(
        "Sync { Mode FTFW { } Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } Multicast Default { IPv4_address 225.0.0.2 Interface lo Group 2 } }",
    );
    assert_eq!(c.sync.expect("sync").default_channel(), 1);
    assert!(warnings(&d).is_empty());
    let (_, d) = ok(
        "Sync { Mode FTFW { } Multicast Default { IPv4_address 225.0.0.1 Interface lo Group 1 } Multicast Default { IPv4_address 225.0.0.2 Interface lo Group 2 } }",
    );
    assert!(ignored(&d).iter().any(|w| w.contains("several channels")));
}

#[test]
fn multicast_family_mismatch_and_invalid_addresses() {
    let (c, d) = ok(
        "Sync { Mode FTFW { } Multicast { IPv6_address ff02::1 IPv4_address 225.0.0.1 IPv4_interface 10.0.0.1 Interface lo Group 1 } }",
    );
    let w = ignored(&d);
    assert!(w.contains(&"your multicast address is IPv4 but is binded to an IPv6 interface? Surely, this is not what you want".to_owned()));
    assert!(
        w.iter()
            .any(|m| m.starts_with("your multicast interface is IPv4"))
    );
    assert_eq!(c.sync.expect("sync").channels[0].family, Some(Family::Ipv6));
    let (_, d) = ok(
        "Sync { Mode FTFW { } Multicast { IPv4_address 225.0.0.1 IPv4_address 225.0.0.0/8 Interface lo Group 1 } }",
    );
    assert!(ignored(&d).contains(&"225.0.0.0/8 is not a valid IPv4 address".to_owned()));
}

#[test]
fn ipv6_address_after_interface_quirk_warns() {
    let (_, d) =
        ok("Sync { Mode FTFW { } Multicast { Interface lo IPv6_address ff02::1 Group 1 } }");
    assert!(
        warnings(&d)
            .iter()
            .any(|w| w.starts_with("`IPv6_address' after `Interface'"))
    );
    let (_, d) =
        ok("Sync { Mode FTFW { } Multicast { IPv6_address ff02::1 Interface lo Group 1 } }");
    assert!(warnings(&d).is_empty(), "{d:?}");
}

#[test]
fn filters() {
    let (c, d) = ok(include_str!(
        "../../../fuzz/corpus/config_parse/17-filters.conf"
    ));
    let f = c.general.filter;
    assert!(f.from_kernelspace);
    assert_eq!(f.state, Some((Policy::Ignore, vec![1, 8, 9])));
    assert_eq!(f.protocol, Some((Policy::Ignore, vec![132])));
    let (policy, nets) = f.address.expect("address");
    assert_eq!(policy, Policy::Accept);
    assert_eq!(
        nets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["10.0.0.0/8", "fe80::/10"]
    );
    assert!(warnings(&d).contains(&"netmask 10.0.0.0 is repeated in the ignore pool".to_owned()));
    let w = ignored(&d);
    assert!(w.contains(&"1.2.3.4/40 is not a valid network, ignoring".to_owned()));
    assert!(w.contains(
        &"getprotobyname() cannot find protocol `nosuchproto' in /etc/protocols".to_owned()
    ));
    let (c, _) =
        ok("General { Filter { Protocol Accept { TCP } } Filter { Protocol Ignore { UDP } } }");
    assert_eq!(
        c.general.filter.protocol,
        Some((Policy::Ignore, vec![6, 17]))
    );
    assert!(!c.general.filter.from_kernelspace);
    assert_eq!(
        errors("General { Filter { State Accept { ESTABLISHED for UDP } } }")[0]
            .symbol
            .as_deref(),
        Some("UDP")
    );
    let e = errors("General { Filter { State Accept { ESTABLISHED } } }");
    assert_eq!(
        e.len(),
        1,
        "no cascade after an unterminated state list: {e:?}"
    );
    assert_eq!(e[0].symbol.as_deref(), Some("}"));
    assert_eq!(
        errors("General { Filter { Protocol Accept { 6 } } }")[0]
            .symbol
            .as_deref(),
        Some("6")
    );
}

#[test]
fn syslog_and_stats() {
    let (c, d) = ok(
        "Stats { LogFile on Syslog local3 }\nGeneral { Syslog daemon NetlinkEventsReliable on }",
    );
    let stats = c.stats.expect("stats");
    assert_eq!(stats.log_file, LogTarget::Default);
    assert_eq!(stats.syslog, Some(Facility::Local(3)));
    assert_eq!(c.general.syslog, Some(Facility::Daemon));
    assert!(
        ignored(&d)
            .contains(&"conflicting Syslog facility values, defaulting to General".to_owned())
    );
    let (_, d) = ok("General { Syslog LOCAL0 }\nStats { Syslog bogus }");
    let w = ignored(&d);
    assert!(w.contains(&"'LOCAL0' is not a known syslog facility, ignoring".to_owned()));
    assert!(w.contains(&"'bogus' is not a known syslog facility, ignoring.".to_owned()));
    assert_eq!(
        errors("Stats { NetlinkEventsReliable on }")[0]
            .symbol
            .as_deref(),
        Some("NetlinkEventsReliable")
    );
}

#[test]
fn helper_section() {
    let (c, _) = ok(
        "Helper { Setup on Type ftp inet tcp { QueueNum 5 QueueLen 10 Policy ftp { ExpectMax 1 ExpectTimeout 300 } } Type tftp inet6 udp { QueueNum 6 } }",
    );
    let h = c.helper.expect("helper");
    assert!(h.setup);
    assert_eq!(h.types.len(), 2);
    assert_eq!(
        h.types[0].policies[0],
        HelperPolicy {
            name: "ftp".into(),
            expect_max: Some(1),
            expect_timeout: Some(300)
        }
    );
    assert_eq!(
        (h.types[1].l3, h.types[1].l4),
        (HelperL3::Inet6, HelperL4::Udp)
    );
    let msgs: Vec<String> = errors(include_str!(
        "../../../fuzz/corpus/config_parse/16-helper.conf"
    ))
    .into_iter()
    .map(|d| d.message)
    .collect();
    assert_eq!(
        msgs,
        vec![
            "Unknown `bogus' helper".to_owned(),
            "unknown layer 4 protocol".to_owned(),
            "Helper policy configuration empty, fix your configuration file, please".to_owned()
        ]
    );
    assert_eq!(
        errors("Helper { Type ftp ip tcp { } }")[0].message,
        "unknown layer 3 protocol"
    );
    assert_eq!(
        errors("Helper { Type ftp inet tcp { Policy sip { ExpectMax 1 } } }")[0].message,
        "Unknown policy `sip' in helper configuration"
    );
    assert_eq!(
        errors("Helper { Type ftp inet tcp { Policy abcdefghijklmnopq { ExpectMax 1 } } }")[0]
            .message,
        "Helper Policy is longer than 16 characters"
    );
    // As 1.4.7 (a helper is looked up by name and transport).
    let wrong = errors("Helper { Type ftp inet udp { QueueNum 5 } }");
    assert_eq!(wrong[0].message, "Unknown `ftp' helper");
    assert_eq!(
        wrong[0].help.as_deref(),
        Some("the `ftp' helper serves tcp")
    );
    let (both, _) = ok("Helper { Type rpc inet udp { } Type ssdp inet6 tcp { } }");
    assert_eq!(both.helper.map(|h| h.types.len()), Some(2));
    // 1.4.7 binds the queue modulo 65536; refused here.
    assert_eq!(
        errors("Helper { Type ftp inet tcp { QueueNum 70000 } }")[0].message,
        "`QueueNum' 70000 is above 65535"
    );
}

/// A Helper section alone is not an idle daemon, and it is no longer
/// reported as left unused.
#[test]
fn a_helper_section_is_used() {
    let (c, d) = ok("Helper { Type ftp inet tcp { QueueNum 5 } }");
    assert!(ignored(&d).is_empty(), "{d:?}");
    assert!(d.iter().all(|d| !d.message.contains("idle")), "{d:?}");
    let summary = check_summary(&c);
    assert!(
        summary.contains("helper: ftp inet tcp queue 5 queue length kernel default"),
        "{summary}"
    );
    assert!(summary.contains("helpers: Setup off"), "{summary}");
    assert!(
        summary.starts_with("mode: user-space helpers only"),
        "{summary}"
    );
}

#[test]
fn collects_all_errors_with_positions_and_renders_them() {
    let src = include_str!("../../../fuzz/corpus/config_parse/09-typo-and-bad-ip.conf");
    let p = parse(src);
    assert!(p.config.is_none());
    let typo = &p.diagnostics[0];
    assert_eq!(
        (typo.severity, typo.line, typo.column),
        (Severity::Error, 2, 2)
    );
    assert_eq!(typo.help.as_deref(), Some("did you mean `HashSize'?"));
    assert_eq!(
        typo.render(src, "x.conf"),
        "x.conf:2:2: error: syntax error: unexpected `HashSise', expected an item of `General' or `}'\n  |\n2 |  HashSise 10\n  |  ^^^^^^^^\n  = help: did you mean `HashSize'?\n"
    );
    assert_eq!(
        typo.c_syntax_error().as_deref(),
        Some("parsing config file in line (2), symbol 'HashSise': syntax error")
    );
    let ip = p
        .diagnostics
        .iter()
        .find(|d| d.message == "300.1.1.1 is not a valid IPv4 address")
        .expect("bad ip");
    assert_eq!(
        (ip.severity, ip.line, ip.column),
        (Severity::Ignored, 7, 16)
    );
    assert_eq!(
        ip.render(src, "x.conf"),
        "x.conf:7:16: error: 300.1.1.1 is not a valid IPv4 address\n  |\n7 |   IPv4_address 300.1.1.1\n  |                ^^^^^^^^^\n  = note: the daemon starts without it, logging a warning; `--check' exits 2\n"
    );
    assert_eq!(ip.severity.log_level(), "warning");
}

/// Found by `--check` (status 2), logged as warnings by the daemon, which
/// starts as 1.4.7 does.
#[test]
fn what_the_daemon_leaves_unused_is_ignored_not_rejected() {
    for (text, message) in [
        (
            "General { Filter { Address Ignore { IPv4_address 300.1.2.3 } } }",
            "300.1.2.3 is not a valid IPv4, ignoring",
        ),
        (
            "General { Filter { Address Ignore { IPv6_address fe80::/200 } } }",
            "fe80::/200 is not a valid network, ignoring",
        ),
        (
            "General { NetlinkBufferSize 2097152 }",
            "`NetlinkBufferSize' 2097152 is greater than `NetlinkBufferSizeMaxGrowth' (0): it is not used, the system's buffer size is kept",
        ),
        (
            "General { NetlinkBufferSize 8388608 NetlinkBufferSizeMaxGrowth 2097152 }",
            "`NetlinkBufferSize' 8388608 is greater than `NetlinkBufferSizeMaxGrowth' (2097152): it is not used, the system's buffer size is kept",
        ),
    ] {
        let (_, d) = ok(text);
        assert_eq!(ignored(&d), vec![message.to_owned()], "{text}");
    }
    // Within bounds, nothing to say.
    let (_, d) = ok("General { NetlinkBufferSize 2097152 NetlinkBufferSizeMaxGrowth 8388608 }");
    assert!(ignored(&d).is_empty(), "{d:?}");
    // What 1.4.7 itself ignores as deprecated stays a warning.
    let (_, d) = ok("General { Nice -1 UNIX { Backlog 20 } }");
    assert!(ignored(&d).is_empty(), "{d:?}");
    assert_eq!(warnings(&d).len(), 2, "{d:?}");
}

/// The idle notice is about the whole file, and only about a usable one.
#[test]
fn idle_notice_has_no_line_and_does_not_follow_errors() {
    let p = parse("General {\n  HashSize 10\n}\n");
    let notice = p
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Notice)
        .expect("idle notice");
    assert_eq!(
        notice.render("General {\n  HashSize 10\n}\n", "t.conf"),
        "t.conf: notice: neither `Sync' nor `Stats' is configured: the daemon will start idle\n"
    );
    let p = parse("General {\n  HashSize x\n}\n");
    assert!(
        p.diagnostics.iter().all(|d| d.severity != Severity::Notice),
        "{:?}",
        p.diagnostics
    );
}

#[test]
fn recovery_continues_after_errors_in_several_blocks() {
    let src = "General {\n Foo 1\n HashSize bar\n}\nSync {\n Mode FTFW { AckWindowSize 3 }\n Multicast { Grup 3 IPv4_address 225.0.0.1 Interface lo Group 5 }\n}\n";
    let p = parse(src);
    let errs: Vec<(usize, Option<String>)> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.line, d.help.clone()))
        .collect();
    assert_eq!(errs.len(), 4, "{}", p.render_all(src, "t"));
    assert_eq!(errs[0].0, 2);
    assert_eq!(errs[1].0, 3);
    assert_eq!(
        errs[2],
        (6, Some("did you mean `ACKWindowSize'?".to_owned()))
    );
    assert_eq!(errs[3], (7, Some("did you mean `Group'?".to_owned())));
}

#[test]
fn interface_checks() {
    let e = errors("Sync { Multicast { Interface abcdefghijklmnop } }");
    assert!(e[0].message.contains("longer than 15"));
    let p = parse_str(
        "Sync { Mode FTFW { } Multicast { IPv4_address 225.0.0.1 Interface nosuchif0 Group 1 } }",
    );
    assert!(p.config.is_some());
    assert!(p.diagnostics.iter().any(
        |d| d.message == "nosuchif0 is an invalid interface" && d.severity == Severity::Warning
    ));
    let p = parse_str(
        "Sync { Mode FTFW { } Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 } }",
    );
    assert!(
        !p.diagnostics
            .iter()
            .any(|d| d.message.contains("invalid interface")),
        "lo exists"
    );
}

#[test]
fn summary_mentions_mode_channels_filters_paths() {
    let (c, _) = ok(REFERENCE);
    let s = check_summary(&c);
    for needle in [
        "mode: sync FTFW",
        "channel: Multicast 225.0.0.50",
        "sync0",
        "protocol accept",
        "/tmp/ct/ftfw-a.lock",
        "/tmp/ct/ftfw-a.sock",
    ] {
        assert!(s.contains(needle), "{needle} missing in\n{s}");
    }
}

#[test]
fn eof_error_line_is_one_past_last() {
    let e = errors("General {\n HashSize 1\n");
    assert_eq!(
        e[0].c_syntax_error().as_deref(),
        Some("parsing config file in line (3), symbol '': syntax error")
    );
    assert!(
        e[0].render("General {\n HashSize 1\n", "f")
            .starts_with("f:3:1: error:")
    );
}

#[test]
fn corpus_replays_without_panicking() {
    let dir = crate_path("../../fuzz/corpus/config_parse");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let p = parse_str(s);
            assert_eq!(p.config.is_none(), p.has_errors(), "{}", path.display());
            for d in &p.diagnostics {
                let _ = d.render(s, "corpus");
            }
        }
        count += 1;
    }
    assert!(count >= 20, "corpus has only {count} files");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC*") {
            let p = parse(&s);
            prop_assert_eq!(p.config.is_none(), p.has_errors());
            for d in &p.diagnostics {
                let _ = d.render(&s, "p");
                prop_assert!(d.span.end <= s.len());
            }
        }

        #[test]
        fn never_panics_on_token_soup(words in proptest::collection::vec(prop::sample::select(vec![
            "General", "Sync", "Stats", "Helper", "{", "}", "Mode", "FTFW", "ALARM", "Multicast", "UDP", "TCP",
            "IPv4_address", "1.2.3.4", "fe80::1", "Interface", "lo", "Group", "3780", "Filter", "Protocol",
            "Accept", "State", "for", "ESTABLISHED", "Address", "Type", "ftp", "inet", "tcp", "Policy", "on",
            "/tmp/x", "#", "\n", "-1", "Nice", "Default", "Options", "ExpectationSync", "Replicate", "\"",
        ]), 0..60)) {
            let s = words.join(" ");
            let p = parse(&s);
            prop_assert_eq!(p.config.is_none(), p.has_errors());
        }
    }
}

#[test]
fn authentication_key_file_is_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ctd-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("sync.key");
    std::fs::write(&key, [7u8; 32]).expect("key");
    let conf = |path: &Path| {
        format!(
            "Sync {{\n\tMode FTFW {{ }}\n\tUDP {{\n\t\tIPv4_address 10.0.0.1\n\t\tIPv4_Destination_Address 10.0.0.2\n\t\tPort 3780\n\t}}\n\tAuthentication {{\n\t\tKeyFile {}\n\t}}\n}}\n",
            path.display()
        )
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (config, _) = ok(&conf(&key));
    assert_eq!(
        config.sync.expect("sync").key_file.as_deref(),
        Some(key.as_path())
    );
    // Readable by others: an error at the KeyFile line, with the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let src = conf(&key);
    let errs = errors(&src);
    let text: Vec<String> = errs.iter().map(|d| d.render(&src, "t")).collect();
    assert!(
        text.iter().any(|t| t.starts_with("t:9:3: error")
            && t.contains("accessible to others")
            && t.contains("chmod 600")),
        "{text:?}"
    );
    // Missing file, and a key that is too short.
    let missing = conf(&dir.join("nope"));
    assert!(
        errors(&missing)
            .iter()
            .any(|d| d.message.contains("can't read KeyFile"))
    );
    std::fs::write(&key, b"short").expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(
        errors(&conf(&key))
            .iter()
            .any(|d| d.message.contains("at least 16"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_block_is_our_extension() {
    let (config, _) = ok("General {\n\tMetrics {\n\t\tIPv6_address ::1\n\t\tPort 9100\n\t}\n}\n");
    let m = config.general.metrics.expect("metrics on");
    assert_eq!(
        m.listen(),
        vec!["[::1]:9100".parse::<std::net::SocketAddr>().expect("addr")]
    );
    // No address: loopback on the default port; no block: off.
    let (config, _) = ok("General {\n\tMetrics { }\n}\n");
    assert_eq!(
        config.general.metrics.expect("on").listen(),
        vec![
            "127.0.0.1:9465"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
        ]
    );
    let (config, _) = ok("General {\n\tHashSize 1024\n}\n");
    assert!(config.general.metrics.is_none());
    // A bad address is an error with its position, not a warning.
    let e = errors("General {\n\tMetrics { IPv4_address 300.1.1.1 }\n}\n");
    assert_eq!(e[0].message, "300.1.1.1 is not a valid IPv4 address");
    let e = errors("General {\n\tMetrics { Prot 1 }\n}\n");
    assert!(e[0].message.contains("`Prot'"), "{}", e[0].message);
}

#[test]
fn control_client_limits_are_our_extension() {
    let (config, _) = ok(
        "General {\n\tUNIX {\n\t\tPath /run/c.ctl\n\t\tMaxClients 4\n\t\tReplyTimeout 9\n\t}\n}\n",
    );
    assert_eq!(
        (config.general.max_clients, config.general.reply_timeout),
        (4, 9)
    );
    let (config, _) = ok("General {\n\tUNIX { Path /run/c.ctl }\n}\n");
    assert_eq!(
        (config.general.max_clients, config.general.reply_timeout),
        (DEFAULT_MAX_CLIENTS, DEFAULT_REPLY_TIMEOUT)
    );
    for key in ["MaxClients", "ReplyTimeout"] {
        let e = errors(&format!("General {{ UNIX {{ {key} 0 }} }}"));
        assert_eq!(e[0].message, format!("`{key}' must be > 0"));
    }
}

#[test]
fn event_batch_delay_is_our_extension() {
    let (config, _) = ok("General {\n\tEventBatchDelay 0\n}\n");
    assert_eq!(config.general.event_batch_delay, 0);
    let (config, _) = ok("General {\n\tEventBatchDelay 20\n}\n");
    assert_eq!(config.general.event_batch_delay, 20);
    let (config, _) = ok("General {\n\tHashSize 8192\n}\n");
    assert_eq!(config.general.event_batch_delay, DEFAULT_EVENT_BATCH_DELAY);
    let e = errors("General { EventBatchDelay 21 }");
    assert_eq!(
        e[0].message,
        "`EventBatchDelay' must be at most 20 (milliseconds)"
    );
    // Not a key elsewhere.
    assert!(!errors("Sync { EventBatchDelay 1 }").is_empty());
}

/// The configuration examples of the README's deployment guide parse
/// without errors or warnings (the key file is a temporary one).
#[test]
fn readme_examples_are_valid() {
    use std::os::unix::fs::PermissionsExt;
    let readme = std::fs::read_to_string(crate_path("../../README.md")).expect("README");
    let dir = std::env::temp_dir().join(format!("ctd-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("sync.key");
    std::fs::write(&key, [7u8; 32]).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut examples = 0;
    for block in readme.split("```conf\n").skip(1) {
        let src = block
            .split("```")
            .next()
            .expect("closed block")
            .replace("/etc/conntrackd/sync.key", &key.display().to_string());
        let (_, diagnostics) = ok(&src);
        assert!(
            warnings(&diagnostics).is_empty(),
            "{src}\n{:?}",
            warnings(&diagnostics)
        );
        examples += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(examples >= 5, "only {examples} examples found");
}

/// Names are quoted one way, 1.4.7's `like this', in every message and
/// hint, over the whole fuzz corpus (valid and broken files alike).
#[test]
fn messages_quote_names_one_way() {
    fn mixed(text: &str) -> bool {
        let mut rest = text;
        while let Some(open) = rest.find('`') {
            let after = &rest[open + 1..];
            match after.find(['`', '\'']) {
                Some(close) if after.as_bytes()[close] == b'`' => return true,
                Some(close) => rest = &after[close + 1..],
                None => return false,
            }
        }
        false
    }
    let dir = crate_path("../../fuzz/corpus/config_parse");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let parsed = parse(&String::from_utf8_lossy(&bytes));
        for d in &parsed.diagnostics {
            for text in [Some(&d.message), d.help.as_ref()].into_iter().flatten() {
                // A syntax error quotes the offending text, which may itself
                // hold a backtick.
                if d.symbol.as_deref().is_some_and(|s| s.contains('`')) {
                    continue;
                }
                assert!(!mixed(text), "{}: {text}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} messages checked");
}

/// Our extension: on unless written off.
#[test]
fn replicate_labels_is_on_unless_written_off() {
    let ch = "Multicast { IPv4_address 225.0.0.1 Interface lo Group 1 }";
    let (c, _) = ok(&format!("Sync {{ Mode FTFW {{ }} {ch} }}"));
    assert!(c.sync.as_ref().expect("sync").replicate_labels);
    assert!(!check_summary(&c).contains("connlabels"));
    let (c, d) = ok(&format!(
        "Sync {{ Mode FTFW {{ }} {ch} Options {{ ReplicateLabels off }} }}"
    ));
    assert!(d.is_empty(), "{d:?}");
    assert!(!c.sync.as_ref().expect("sync").replicate_labels);
    assert!(check_summary(&c).contains("connlabels: not replicated (ReplicateLabels off)\n"));
}
