//! The Prometheus text exposition format (version 0.0.4) of a reading,
//! from its descriptions: names, types, HELP and labels all come from
//! `model.rs`.

use std::fmt::Write;

use super::describe::{Kind, Label, Metric, Visitor, Walk};
use super::model::Snapshot;

/// Prefix of every metric name.
const NS: &str = "conntrackd";

/// One metric family: its samples are written together, after its HELP
/// and TYPE, as the format requires.
struct Family {
    name: &'static str,
    kind: Kind,
    help: String,
    samples: Vec<(Vec<Label>, f64)>,
}

/// Gathers the samples of a walk by family, in the order families are
/// first met.
#[derive(Default)]
struct Families {
    families: Vec<Family>,
}

impl Families {
    fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> &mut Family {
        let at = match self.families.iter().position(|f| f.name == name) {
            Some(at) => at,
            None => {
                self.families.push(Family {
                    name,
                    kind,
                    help: one_line(help),
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let family = &mut self.families[at];
        if family.help.is_empty() {
            family.help = one_line(help);
        }
        family
    }
}

impl Visitor for Families {
    fn sample(&mut self, metric: &Metric, doc: &'static str, labels: &[Label], value: f64) {
        let help = if metric.help.is_empty() {
            doc
        } else {
            metric.help
        };
        self.family(metric.name, metric.kind, help)
            .samples
            .push((labels.to_vec(), value));
    }

    fn info(&mut self, metric: &'static str, help: &'static str, labels: &[Label], label: Label) {
        // The labels of one information sample arrive one by one, after
        // the enclosing rows' labels (`labels`).
        let family = self.family(metric, Kind::Gauge, help);
        match family
            .samples
            .iter_mut()
            .find(|(have, _)| have.starts_with(labels))
        {
            Some((have, _)) => have.push(label),
            None => {
                let mut all = labels.to_vec();
                all.push(label);
                family.samples.push((all, 1.0));
            }
        }
    }
}

/// A doc comment as one HELP line (plain text: no Markdown backticks).
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('`', "")
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text of a reading. Names follow the Prometheus
/// conventions: `_total` counters, base units, `snake_case`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut families = Families::default();
    snapshot.walk(&mut families, &mut Vec::new());
    let mut out = String::new();
    for family in families.families {
        let name = family.name;
        let _ = writeln!(out, "# HELP {NS}_{name} {}", family.help);
        let _ = writeln!(out, "# TYPE {NS}_{name} {}", family.kind.name());
        for (labels, value) in family.samples {
            let _ = write!(out, "{NS}_{name}");
            if !labels.is_empty() {
                out.push('{');
                for (i, (key, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::describe::{Field, What};
    use crate::counters::model::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// A reading with every part present, numbered so that each field has
    /// a value of its own.
    fn full() -> Snapshot {
        let mut n = 0u64;
        let mut next = || {
            n += 1;
            n
        };
        Snapshot {
            version: "1.0",
            mode: "sync",
            uptime_seconds: next(),
            caches: vec![CacheStats {
                name: "internal",
                kind: "conntrack",
                active: next(),
                created: next(),
                create_failed: next(),
                updated: next(),
                update_failed: next(),
                destroyed: next(),
                destroy_failed: next(),
                no_space: next(),
            }],
            traffic: Some(Traffic {
                bytes: next(),
                packets: next(),
            }),
            netlink: Netlink {
                events_received: next(),
                events_filtered: next(),
                events_unknown_type: next(),
                catch_event_failed: next(),
                dump_unknown_type: next(),
                overruns: next(),
                kernel_flushes: next(),
                kernel_resyncs: next(),
                buffer_bytes: next(),
            },
            control: Control {
                read_failed: next(),
                unknown_requests: next(),
                replies_abandoned: next(),
                clients_refused: next(),
                silent_clients_dropped: next(),
                accept_errors: next(),
            },
            metrics_endpoint: Some(MetricsEndpoint {
                scrapes: next(),
                bad_requests: next(),
                incomplete_requests: next(),
                clients_refused: next(),
                silent_clients_dropped: next(),
                accept_errors: next(),
            }),
            sync: Some(SyncStats {
                protocol: "ftfw",
                authentication: true,
                received: Received {
                    malformed: next(),
                    wrong_version: next(),
                    malformed_header: next(),
                    malformed_payload: next(),
                    bad_type: next(),
                    truncated: next(),
                    bad_size: next(),
                    lost: next(),
                    before: next(),
                    applied: next(),
                    auth_failures: next(),
                    peers_evicted: next(),
                },
                auth: Some(AuthStats {
                    refused: [("bad_tag", next()), ("replayed", next())].into(),
                    held: next(),
                    held_now: next(),
                    verified: next(),
                    verified_now: next(),
                    handshakes_sent: next(),
                }),
                queues: Queues {
                    transmit: next(),
                    resend: Some(next()),
                    resend_max: Some(next()),
                    resend_dropped: Some(next()),
                    control_nodes: next(),
                    error_queue: next(),
                    error_queue_max: next(),
                    error_queue_dropped: next(),
                },
                channels: vec![Channel {
                    index: 0,
                    transport: "udp",
                    device: "eth1".into(),
                    status: "RUNNING",
                    up: true,
                    active: true,
                    bytes_sent: next(),
                    bytes_received: next(),
                    packets_sent: next(),
                    packets_received: next(),
                    send_errors: next(),
                    receive_errors: next(),
                    foreign_connections: next(),
                }],
                bypass: Some(Bypass {
                    new: next(),
                    updated: next(),
                    destroyed: next(),
                }),
                inject: Some(InjectCounters {
                    created: next(),
                    create_failed: next(),
                    updated: next(),
                    update_failed: next(),
                    destroyed: next(),
                    destroy_failed: next(),
                }),
                last_commit: Some(CommitReport {
                    seconds: 0.5,
                    committed: next(),
                    failed: next(),
                }),
                seconds_since_last_message: Some(0.25),
                synced: true,
                live_peers: next(),
                peers_waiting: next(),
            }),
            helpers: vec![HelperStats {
                name: "ftp",
                family: "inet",
                protocol: "tcp",
                queue: 5,
                packets: next(),
                expectations_created: next(),
                expectations_refused: next(),
                refused_by_policy: next(),
                evicted_by_policy: next(),
                parse_errors: next(),
                queue_drops: next(),
            }],
        }
    }

    /// Every metric name the descriptions give, with the number of
    /// samples a full reading has of it.
    fn described(fields: &[Field], out: &mut Vec<&'static str>) {
        for field in fields {
            match field.what {
                What::Metric(m) => out.push(m.name),
                What::Map { metric, .. } => out.push(metric.name),
                What::Info { metric, .. } => out.push(metric),
                What::Nested(inner) => described(inner, out),
                What::Plain | What::Label(_) => {}
            }
        }
    }

    #[test]
    fn every_described_metric_is_exposed_once_with_its_samples_together() {
        let text = render(&full());
        let mut names = Vec::new();
        described(Snapshot::FIELDS, &mut names);
        names.dedup();
        for name in &names {
            let family = format!("conntrackd_{name}");
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
            // Its samples follow its TYPE line, without another family
            // in between.
            let after = &text[text.find(&format!("# TYPE {family} ")).expect("typed")..];
            let block: Vec<&str> = after
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with('#'))
                .collect();
            assert!(!block.is_empty(), "{family} has samples");
            assert!(
                block.iter().all(|l| l.starts_with(&format!("{family} "))
                    || l.starts_with(&format!("{family}{{"))),
                "{family}: {block:?}"
            );
        }
        // Every sample line is of a described family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().expect("name");
            assert!(
                names.iter().any(|n| name == format!("conntrackd_{n}")),
                "{line}"
            );
        }
        // Each field's own value, with the labels of its row and its own.
        for wanted in [
            "conntrackd_info{version=\"1.0\",mode=\"sync\"} 1",
            "conntrackd_sync_info{protocol=\"ftfw\",authentication=\"true\"} 1",
            "conntrackd_cache_full_total{cache=\"internal\",kind=\"conntrack\"} 9",
            "conntrackd_sync_malformed_by_reason_total{reason=\"version\"} ",
            "conntrackd_sync_auth_refused_total{reason=\"bad_tag\"} ",
            "conntrackd_sync_channel_up{channel=\"0\",transport=\"udp\",device=\"eth1\"} 1",
            "conntrackd_inject_total{operation=\"destroy\",result=\"failed\"} ",
            "conntrackd_sync_queue_length{queue=\"resend\"} ",
            "conntrackd_commit_duration_seconds 0.5",
            "conntrackd_helper_packets_total{helper=\"ftp\",family=\"inet\",protocol=\"tcp\",queue=\"5\"} ",
        ] {
            assert!(text.contains(wanted), "{wanted}");
        }
    }

    /// Absent parts give no samples; a family with none is left out.
    #[test]
    fn absent_parts_are_left_out() {
        let mut s = full();
        if let Some(sync) = s.sync.as_mut() {
            sync.auth = None;
            sync.last_commit = None;
            sync.seconds_since_last_message = None;
            sync.queues.resend = None;
        }
        let text = render(&s);
        assert!(!text.contains("sync_auth_refused_total"));
        assert!(!text.contains("commit_duration_seconds"));
        assert!(!text.contains("last_message_age"));
        assert!(!text.contains("queue=\"resend\"} 2"));
        assert!(text.contains("conntrackd_sync_queue_length{queue=\"transmit\"}"));
    }

    fn json_keys(fields: &[Field], value: &serde_json::Value, path: &str) {
        for field in fields {
            let at = format!("{path}{}", field.json);
            let inner = value
                .get(field.json)
                .unwrap_or_else(|| panic!("{at} missing"));
            if let What::Nested(nested) = field.what {
                match inner {
                    serde_json::Value::Array(rows) => rows
                        .iter()
                        .for_each(|row| json_keys(nested, row, &format!("{at}[]."))),
                    other => json_keys(nested, other, &format!("{at}.")),
                }
            }
        }
        let declared: Vec<&str> = fields.iter().map(|f| f.json).collect();
        if let serde_json::Value::Object(map) = value {
            for key in map.keys() {
                assert!(declared.contains(&key.as_str()), "{path}{key} undescribed");
            }
        }
    }

    /// `--json` has exactly the described fields.
    #[test]
    fn the_json_document_is_the_described_fields() {
        let value = serde_json::to_value(full()).expect("serialises");
        json_keys(Snapshot::FIELDS, &value, "");
    }
}
