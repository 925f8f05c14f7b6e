//! The documented command line: every flag `cli.rs` parses, with its
//! argument and a short description, plus exit statuses and signals.
//!
//! The `docgen` crate renders `conntrackd(8)` and the shell completions
//! from these tables (it includes this file, which therefore depends on
//! nothing else); the tests in `cli.rs` check them against the parser.

/// One possible sub-argument of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    /// The word (matched by prefix, like conntrackd 1.4.7).
    pub name: &'static str,
    /// What it selects.
    pub description: &'static str,
    /// `Some(replacement)` for a deprecated spelling.
    pub deprecated: Option<&'static str>,
}

/// The argument a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// None.
    None,
    /// A mandatory file name.
    File(&'static str),
    /// An optional word out of a list.
    Optional(&'static [Value]),
}

/// A group of flags, as in the usage text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Daemon, configuration, version and help.
    General,
    /// Requests sent to a running daemon.
    Client,
    /// Options of this implementation, not in conntrackd 1.4.7.
    Extension,
}

/// One flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The flag, e.g. `-s` or `--check`.
    pub flag: &'static str,
    /// Another spelling with the same effect, e.g. `--help` for `-h`.
    pub alias: Option<&'static str>,
    /// Its argument.
    pub arg: Arg,
    /// What it does.
    pub description: &'static str,
    /// Where it is listed.
    pub group: Group,
}

const CT: Value = Value {
    name: "ct",
    description: "flows only",
    deprecated: None,
};
const EXPECT: Value = Value {
    name: "expect",
    description: "expectations only",
    deprecated: None,
};
/// `ct` or `expect`.
pub const CT_OR_EXPECT: &[Value] = &[CT, EXPECT];

/// Sub-arguments of `-f`.
pub const CACHES: &[Value] = &[
    Value {
        name: "internal",
        description: "the internal cache only (flows of this node)",
        deprecated: None,
    },
    Value {
        name: "external",
        description: "the external cache only (flows received from the peers)",
        deprecated: None,
    },
];

/// Sub-arguments of `-s`, in the order the prefix is matched.
pub const STATS: &[Value] = &[
    Value {
        name: "network",
        description: "sync messages sent and received, sequence errors, authentication failures",
        deprecated: None,
    },
    Value {
        name: "cache",
        description: "counters of the internal and external caches",
        deprecated: None,
    },
    Value {
        name: "runtime",
        description: "daemon uptime, netlink and control socket counters",
        deprecated: None,
    },
    Value {
        name: "multicast",
        description: "old name of link",
        deprecated: Some("link"),
    },
    Value {
        name: "link",
        description: "state of each channel and its link",
        deprecated: None,
    },
    Value {
        name: "rsqueue",
        description: "the FTFW resend queue",
        deprecated: None,
    },
    Value {
        name: "process",
        description: "child processes (dumps and flushes)",
        deprecated: None,
    },
    Value {
        name: "queue",
        description: "internal queues",
        deprecated: None,
    },
    Value {
        name: "ct",
        description: "the general summary, as without a word",
        deprecated: None,
    },
    Value {
        name: "expect",
        description: "expectation statistics (with ExpectationSync)",
        deprecated: None,
    },
];

/// Every flag, in documentation order.
pub const FLAGS: &[Flag] = &[
    Flag {
        flag: "-d",
        alias: None,
        arg: Arg::None,
        description: "Run the daemon in the background. The command returns once the daemon is running (status 0) or has failed to start (status 1). \
            Without -d and without a client command, the daemon runs in the foreground.",
        group: Group::General,
    },
    Flag {
        flag: "-C",
        alias: None,
        arg: Arg::File("FILE"),
        description: "Read the configuration from FILE instead of /etc/conntrackd/conntrackd.conf. \
            Client commands read it as well, to find the control socket (General { UNIX { Path } }).",
        group: Group::General,
    },
    Flag {
        flag: "-v",
        alias: Some("--version"),
        arg: Arg::None,
        description: "Print the version and exit.",
        group: Group::General,
    },
    Flag {
        flag: "-h",
        alias: Some("--help"),
        arg: Arg::None,
        description: "Print the usage and exit.",
        group: Group::General,
    },
    Flag {
        flag: "-c",
        alias: None,
        arg: Arg::Optional(CT_OR_EXPECT),
        description: "Commit: write the external cache into the kernel table, flows and expectations unless one is named. Returns when the commit is complete.",
        group: Group::Client,
    },
    Flag {
        flag: "-f",
        alias: None,
        arg: Arg::Optional(CACHES),
        description: "Flush the internal and the external cache, or only the one named.",
        group: Group::Client,
    },
    Flag {
        flag: "-F",
        alias: None,
        arg: Arg::Optional(CT_OR_EXPECT),
        description: "Flush the kernel's connection tracking table (the flows the filter accepts) and, with ExpectationSync, its expectation table, or only the one named.",
        group: Group::Client,
    },
    Flag {
        flag: "-i",
        alias: None,
        arg: Arg::Optional(CT_OR_EXPECT),
        description: "Show the internal cache: the flows (or with expect the expectations) of this node.",
        group: Group::Client,
    },
    Flag {
        flag: "-e",
        alias: None,
        arg: Arg::Optional(CT_OR_EXPECT),
        description: "Show the external cache: the flows (or expectations) received from the peers.",
        group: Group::Client,
    },
    Flag {
        flag: "-x",
        alias: None,
        arg: Arg::None,
        description: "With -i or -e (given before it): show the cache in XML.",
        group: Group::Client,
    },
    Flag {
        flag: "-s",
        alias: None,
        arg: Arg::Optional(STATS),
        description: "Show statistics: the general summary, or the part named.",
        group: Group::Client,
    },
    Flag {
        flag: "-R",
        alias: None,
        arg: Arg::Optional(CT_OR_EXPECT),
        description: "Resynchronise the internal cache with the kernel table, flows and expectations unless one is named.",
        group: Group::Client,
    },
    Flag {
        flag: "-n",
        alias: None,
        arg: Arg::None,
        description: "Ask the peers to send their internal caches (FTFW and NOTRACK modes).",
        group: Group::Client,
    },
    Flag {
        flag: "-B",
        alias: None,
        arg: Arg::None,
        description: "Send the whole internal cache to the peers (FTFW and NOTRACK modes).",
        group: Group::Client,
    },
    Flag {
        flag: "-t",
        alias: None,
        arg: Arg::None,
        description: "Schedule, PurgeTimeout seconds later, a flush of the kernel flows the filter accepts and of the internal cache; \
            a commit or a flush of the internal cache cancels it. Kernel timeouts are not changed.",
        group: Group::Client,
    },
    Flag {
        flag: "-k",
        alias: None,
        arg: Arg::None,
        description: "Stop the daemon.",
        group: Group::Client,
    },
    Flag {
        flag: "--synced",
        alias: None,
        arg: Arg::None,
        description: "Ask the running daemon whether it holds its peers' state: exit 0 and print `synced` once the start-up resync from every live peer has completed, \
            exit 1 and print what it waits for until then (also when no daemon answers). For a keepalived `track_script` (see conntrackd.conf(5) and docs/readiness.md).",
        group: Group::Extension,
    },
    Flag {
        flag: "--check",
        alias: None,
        arg: Arg::None,
        description: "Check the configuration file and exit: every error and warning is printed with its line, column and the offending text, then a summary of the configuration. Nothing is started. \
            Exits 0 if the configuration is used as written, 1 if the daemon would refuse it, 2 if the daemon would start but leave something written unused (see EXIT STATUS).",
        group: Group::Extension,
    },
    Flag {
        flag: "--json",
        alias: None,
        arg: Arg::None,
        description: "With -s, -i or -e: print JSON instead of text.",
        group: Group::Extension,
    },
];

/// Exit statuses: (status, meaning).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "Success: the request was delivered to the daemon, the background daemon started, the daemon stopped in order, or -h, -v or --check (configuration accepted) completed.",
    ),
    (
        "1",
        "Failure: an unknown option, -C without a file name (both exit 0 in conntrackd 1.4.7, 1 since 1.4.9), the configuration cannot be read or has an error (with --check: the daemon would refuse it, which includes a Helper section when the kernel --check runs on has no user-space helper support, CONFIG_NF_CT_NETLINK_HELPER), the daemon cannot be reached, a sub-argument of -f or -s is unknown, -x is misplaced, -d is combined with a client command, or the daemon failed to start (for instance because the lock file is held).",
    ),
    (
        "2",
        "--check only: the daemon would start with this configuration, but not as written: a value it ignores (an invalid address in a filter or a channel, an unknown protocol or syslog facility, a NetlinkBufferSize above NetlinkBufferSizeMaxGrowth, CommitTimeout with DisableExternalCache, …). \
        Each is printed as an error; the daemon itself logs them as warnings and starts, as conntrackd 1.4.7 does. Legacy spellings it maps and keys 1.4.7 ignores as deprecated (Nice, Backlog, …) stay warnings and do not change the status.",
    ),
];

/// Signals the daemon handles: (signal, effect).
pub const SIGNALS: &[(&str, &str)] = &[
    (
        "SIGTERM, SIGINT",
        "Orderly shutdown, as with -k: the control socket and the lock file are removed.",
    ),
    ("SIGHUP", "Reopen the log files (after log rotation)."),
];
