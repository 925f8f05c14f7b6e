//! The Prometheus endpoint and `--json`, in a namespace: well-formed
//! exposition text, the same numbers as `-s`, errors for bad requests.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Netns, Scratch, conntrackd_bin, netns_available, wait_until};

const SYNC: &str = "Sync {\n\tMode FTFW { }\n\tMulticast {\n\t\tIPv4_address 225.0.0.50\n\t\tIPv4_interface 127.0.0.1\n\t\tInterface lo\n\t\tGroup 3780\n\t}\n}";

fn config(s: &Scratch) -> PathBuf {
    let text = format!(
        "{SYNC}\nGeneral {{\n\tSystemd off\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 8388608\n\tMetrics {{\n\t\tIPv4_address 127.0.0.1\n\t\tIPv6_address ::1\n\t\tPort 9465\n\t}}\n}}\n",
        s.path("log").display(),
        s.path("lock").display(),
        s.path("sock").display()
    );
    s.write("m.conf", &text)
}

fn ctl(ns: &Netns, conf: &Path, args: &[&str]) -> String {
    let mut all = vec!["-C", conf.to_str().expect("utf8 path")];
    all.extend_from_slice(args);
    ns.exec_ok(conntrackd_bin().to_str().expect("utf8 path"), &all)
}

/// Sends `request` raw to the endpoint (bash's /dev/tcp: no HTTP client
/// needed) and returns the whole response.
fn http(ns: &Netns, host: &str, request: &str) -> String {
    let script = format!("exec 3<>/dev/tcp/{host}/9465; printf '%s' \"$1\" >&3; cat <&3");
    let out = ns.exec("bash", &["-c", &script, "http", request]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks the exposition format and returns `name{labels}` → value.
fn parse_exposition(body: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut described: HashSet<String> = HashSet::new();
    let mut typed: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            assert!(described.insert(name.to_string()), "HELP twice: {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().expect("name").to_string();
            let kind = parts.next().expect("type");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
            }
            assert!(typed.insert(name.clone()), "TYPE twice: {name}");
            if !current.is_empty() {
                finished.insert(std::mem::take(&mut current));
            }
            current = name;
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let name = series.split('{').next().expect("name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        assert!(name.starts_with("conntrackd_"), "{name}");
        assert_eq!(name, current, "sample outside its family: {line}");
        assert!(!finished.contains(name), "family split: {name}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        let value: f64 = value.parse().expect("numeric value");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {series}"
        );
    }
    assert_eq!(described, typed, "every family has HELP and TYPE");
    samples
}

/// Runs a python3 script in the namespace that prints `ok` once it is set
/// up and then stays; returns the process once `ok` was read.
fn python_holding(ns: &Netns, script: &str) -> std::process::Child {
    let mut child = ns.spawn("python3", &["-c", script]);
    let mut line = String::new();
    if let Some(out) = child.stdout.as_mut() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(line.trim(), "ok", "{script}");
    child
}

/// Every object key of a JSON document.
fn collect_keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                out.push(key.clone());
                collect_keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}

/// The number after `label` in the `-s` text (first match after `after`).
fn stat(text: &str, after: &str, label: &str) -> f64 {
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {text}"));
    let rest = &text[from..];
    let at = rest
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {rest}"));
    rest[at + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("number after {label}"))
}

#[test]
fn metrics_json_and_stats_agree() {
    if !netns_available("metrics_json_and_stats_agree") {
        return;
    }
    let ns = Netns::new("cmt");
    let s = Scratch::new();
    let conf = config(&s);
    ctl(&ns, &conf, &["-d"]);
    for port in 1..=3 {
        let sport = port.to_string();
        ns.conntrack(&[
            "-I", "-s", "10.1.1.5", "-d", "10.2.2.9", "-p", "udp", "--sport", &sport, "--dport",
            "53", "-t", "60",
        ]);
    }
    assert!(wait_until(Duration::from_secs(5), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .lines()
    .count()
        == 3));
    ctl(&ns, &conf, &["-c"]);

    // Read all three with nothing happening in between.
    let text = ctl(&ns, &conf, &["-s"]);
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    let network = ctl(&ns, &conf, &["-s", "network"]);
    let response = http(&ns, "127.0.0.1", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let json: serde_json::Value =
        serde_json::from_str(&ctl(&ns, &conf, &["-s", "--json"])).expect("-s --json is JSON");

    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let m = parse_exposition(body);
    let metric = |series: &str| *m.get(series).unwrap_or_else(|| panic!("{series} missing"));

    let internal = "{cache=\"internal\",kind=\"conntrack\"}";
    let active = stat(&text, "cache internal:", "current active connections:");
    assert_eq!(active, 3.0);
    assert_eq!(
        metric(&format!("conntrackd_cache_objects{internal}")),
        active
    );
    assert_eq!(json["caches"][0]["active"], 3);
    let created = stat(&text, "cache internal:", "connections created:");
    assert_eq!(
        metric(&format!("conntrackd_cache_created_total{internal}")),
        created
    );
    assert_eq!(json["caches"][0]["created"].as_f64(), Some(created));
    let events = stat(&runtime, "netlink stats:", "events received:");
    assert!(events >= 3.0);
    assert_eq!(metric("conntrackd_netlink_events_received_total"), events);
    assert_eq!(json["netlink"]["events_received"].as_f64(), Some(events));
    assert_eq!(
        metric("conntrackd_netlink_buffer_bytes"),
        stat(
            &runtime,
            "netlink stats:",
            "current buffer size (in bytes):"
        )
    );
    assert_eq!(
        metric("conntrackd_sync_malformed_messages_total"),
        stat(&network, "recv:", "Malformed messages:")
    );
    let channel = "{channel=\"0\",transport=\"multicast\",device=\"lo\"}";
    // The daemon sends an ALIVE every second, so the channel's byte count
    // may move between the two readings: read both again until they were
    // taken within the same second.
    let sent_agree = |text: &str, m: &HashMap<String, f64>| {
        let sent = stat(text, "multicast traffic", ":\n");
        assert!(sent > 0.0, "HELLO/ALIVE went out");
        m.get(&format!(
            "conntrackd_sync_channel_sent_bytes_total{channel}"
        )) == Some(&sent)
    };
    if !sent_agree(&text, &m) {
        assert!(
            wait_until(Duration::from_secs(5), || {
                let text = ctl(&ns, &conf, &["-s"]);
                let response = http(&ns, "127.0.0.1", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
                let (_, body) = response.split_once("\r\n\r\n").expect("HTTP response");
                sent_agree(&text, &parse_exposition(body))
            }),
            "-s and the metrics never agreed on the bytes sent"
        );
    }
    assert_eq!(metric(&format!("conntrackd_sync_channel_up{channel}")), 1.0);
    assert_eq!(
        metric(&format!("conntrackd_sync_channel_active{channel}")),
        1.0
    );
    assert_eq!(
        metric("conntrackd_commit_entries{result=\"committed\"}"),
        stat(&text, "cache external:", "current active connections:")
    );
    assert!(m.contains_key("conntrackd_commit_duration_seconds"));
    assert_eq!(json["sync"]["protocol"], "ftfw");

    // Everything a scrape or a JSON document holds is documented.
    let docs = |name: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs")
                .join(name),
        )
        .expect("docs file")
    };
    let metrics_doc = docs("metrics.md");
    for series in m.keys() {
        let name = series.split('{').next().unwrap_or(series);
        assert!(
            metrics_doc.contains(&format!("`{name}`")),
            "{name} is not in docs/metrics.md"
        );
    }
    let json_doc = docs("json.md");
    let mut keys = Vec::new();
    collect_keys(&json, &mut keys);
    for key in keys {
        assert!(json_doc.contains(&key), "{key} is not in docs/json.md");
    }

    // Every `-s` line a counter's description names (docs/json.md lists
    // them all, generated from the descriptions) is in that report: its
    // parts, in order. Blocks this configuration does not show (no
    // authentication, bypass or inject; nothing refused) are skipped.
    let conditional = [
        "authentication:",
        "Auth failures",
        "Held envelopes",
        "Verified",
        "Handshakes sent",
        "internal bypass",
        "external inject",
        "control socket:",
        "TCP connections refused",
        "user-space helpers:",
    ];
    let mut reports: HashMap<String, String> = HashMap::new();
    let mut checked = 0;
    let generated = json_doc
        .split_once("do not edit below")
        .expect("generated part")
        .1;
    for shown in generated
        .split('`')
        .filter(|t| t.starts_with("-s") && t.contains(": "))
    {
        let (report, line) = shown.split_once(": ").expect("-s REPORT: line");
        if conditional.iter().any(|c| line.contains(c)) {
            continue;
        }
        let text = reports
            .entry(report.to_string())
            .or_insert_with(|| ctl(&ns, &conf, &report.split(' ').collect::<Vec<_>>()));
        let mut rest = text.as_str();
        for part in line.split(" ... ") {
            let at = rest
                .find(part)
                .unwrap_or_else(|| panic!("`{shown}`: {part:?} not in `{report}`:\n{text}"));
            rest = &rest[at + part.len()..];
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} lines checked");

    // -i --json: the same three flows, each with its text line.
    let flows: serde_json::Value =
        serde_json::from_str(&ctl(&ns, &conf, &["-i", "--json"])).expect("-i --json is JSON");
    let flows = flows.as_array().expect("array");
    assert_eq!(flows.len(), 3);
    for f in flows {
        assert_eq!(f["protocol"], "udp");
        assert_eq!(f["original"]["dst"], "10.2.2.9");
        assert!(f["text"].as_str().is_some_and(|t| t.starts_with("udp ")));
    }
    let ext: serde_json::Value =
        serde_json::from_str(&ctl(&ns, &conf, &["-e", "--json"])).expect("-e --json is JSON");
    // (On lo the daemon hears its own multicast: its external cache holds
    // its flows too.)
    assert_eq!(
        ext.as_array().map(|a| a.len() as f64),
        Some(stat(
            &text,
            "cache external:",
            "current active connections:"
        ))
    );

    // IPv6 listener, HEAD, and errors.
    let v6 = http(&ns, "::1", "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(v6.starts_with("HTTP/1.1 200 OK\r\n"), "{v6}");
    assert!(v6.ends_with("\r\n\r\n"), "HEAD has no body: {v6}");
    let missing = http(&ns, "127.0.0.1", "GET / HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = http(&ns, "127.0.0.1", "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let garbage = http(&ns, "127.0.0.1", "\u{1}\u{2} nonsense\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    // The daemon is still there and counting.
    assert!(ctl(&ns, &conf, &["-s"]).contains("cache internal:"));
    ctl(&ns, &conf, &["-k"]);
}

#[test]
fn metrics_address_in_use_stops_the_start() {
    if !netns_available("metrics_address_in_use_stops_the_start") {
        return;
    }
    let ns = Netns::new("cmu");
    let s = Scratch::new();
    let conf = config(&s);
    // Something else holds the port.
    let mut holder = python_holding(
        &ns,
        "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',9465))\ns.listen()\nprint('ok',flush=True)\ntime.sleep(30)",
    );
    let out = ns.exec(
        conntrackd_bin().to_str().expect("utf8"),
        &["-C", conf.to_str().expect("utf8"), "-d"],
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can't listen for metrics on 127.0.0.1:9465"),
        "{out:?}"
    );
}

/// A flood of idle connections to the endpoint costs the daemon nothing:
/// the control socket keeps answering, and scrapes are served.
#[test]
fn idle_connections_cannot_wedge_the_daemon() {
    if !netns_available("idle_connections_cannot_wedge_the_daemon") {
        return;
    }
    let ns = Netns::new("cmf");
    let s = Scratch::new();
    let conf = config(&s);
    // Few descriptors, so that serving every client would run out of them.
    let start = format!(
        "ulimit -n 128 && exec {} -C {} -d",
        conntrackd_bin().display(),
        conf.display()
    );
    ns.exec_ok("sh", &["-c", &start]);
    let mut flood = python_holding(
        &ns,
        "import socket,time,resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))\nidle=[socket.create_connection(('127.0.0.1',9465)) for _ in range(1000)]\nprint('ok',flush=True)\ntime.sleep(30)",
    );
    // The control socket answers at once, flood or not.
    let stats = ns.exec(
        "timeout",
        &[
            "2",
            conntrackd_bin().to_str().expect("utf8"),
            "-C",
            conf.to_str().expect("utf8"),
            "-s",
        ],
    );
    assert!(
        String::from_utf8_lossy(&stats.stdout).contains("cache internal:"),
        "-s during the flood: {stats:?}"
    );
    // A scrape takes the slot of the oldest idle client.
    let served = wait_until(Duration::from_secs(15), || {
        http(&ns, "127.0.0.1", "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK")
    });
    let _ = flood.kill();
    let _ = flood.wait();
    assert!(served, "no scrape served after the flood");
    ctl(&ns, &conf, &["-k"]);
}

/// Idle connections that fill every slot of the endpoint do not lock out
/// the scraper: its connection takes the slot of the oldest idle one.
#[test]
fn idle_connections_cannot_lock_out_the_scraper() {
    if !netns_available("idle_connections_cannot_lock_out_the_scraper") {
        return;
    }
    let ns = Netns::new("cml");
    let s = Scratch::new();
    let conf = config(&s);
    ctl(&ns, &conf, &["-d"]);
    let mut idle = python_holding(
        &ns,
        "import socket,time\nidle=[socket.create_connection(('127.0.0.1',9465)) for _ in range(32)]\nprint('ok',flush=True)\ntime.sleep(30)",
    );
    let scrape = http(&ns, "127.0.0.1", "GET /metrics HTTP/1.1\r\n\r\n");
    let _ = idle.kill();
    let _ = idle.wait();
    assert!(
        scrape.starts_with("HTTP/1.1 200 OK"),
        "scrape while 32 idle connections are open: {scrape:?}"
    );
    // What happened is counted: 32 idle clients for 16 slots, then the
    // scraper, made room for 17 times; the 15 idle ones left in their slots
    // went away without a request; one bad request.
    assert!(http(&ns, "127.0.0.1", "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    let mut last = HashMap::new();
    let counted = wait_until(Duration::from_secs(10), || {
        let body = http(&ns, "127.0.0.1", "GET /metrics HTTP/1.1\r\n\r\n");
        let Some((_, body)) = body.split_once("\r\n\r\n") else {
            return false;
        };
        last = parse_exposition(body);
        let get = |name: &str| last.get(name).copied().unwrap_or(-1.0);
        get("conntrackd_metrics_silent_clients_dropped_total") == 17.0
            && get("conntrackd_metrics_incomplete_requests_total") == 15.0
            && get("conntrackd_metrics_bad_requests_total") == 1.0
            && get("conntrackd_metrics_scrapes_total") >= 2.0
            && get("conntrackd_metrics_clients_refused_total") == 0.0
            && get("conntrackd_metrics_accept_errors_total") == 0.0
    });
    let endpoint: Vec<_> = last
        .iter()
        .filter(|(k, _)| k.starts_with("conntrackd_metrics_"))
        .collect();
    assert!(counted, "metrics endpoint counters: {endpoint:?}");
    ctl(&ns, &conf, &["-k"]);
}
