//! Our ftp, tftp, amanda and sane helpers against the kernel's own, on
//! the same live traffic in a namespace: the kernel's helper is assigned
//! to the flows (`nft ct helper`) and the same packets are also queued to
//! our runner (`iptables-legacy -j NFQUEUE`); the expectations ours
//! computes must be those `conntrack -E expect` reports (timeouts aside).
//! Real clients and servers: python's ftplib against pyftpdlib (IPv4
//! PORT and PASV, IPv6 EPRT and EPSV), tftp-hpa's client and server;
//! Amanda and SANE exchanges are written by python scripts following
//! each protocol (no Amanda or saned server is packaged for the tests).

mod ns;

use std::collections::BTreeSet;
use std::time::Duration;

use conntrack_model::Expect;
use helperd::{RunnerOptions, plan};
use ns::{Ns, Running, available};

/// Debian's python, which has pyftpdlib (python3-pyftpdlib).
const PYTHON: &str = "/usr/bin/python3";

const CONFIG: &str = "Helper {
\tType ftp inet tcp { QueueNum 1 }
\tType tftp inet udp { QueueNum 2 }
\tType amanda inet udp { QueueNum 3 }
\tType sane inet tcp { QueueNum 4 }
\tType ftp inet6 tcp { QueueNum 1 }
}
";

const NFT: &str = r#"table inet kernel_helpers {
  ct helper ftp-k { type "ftp" protocol tcp; }
  ct helper tftp-k { type "tftp" protocol udp; }
  ct helper amanda-k { type "amanda" protocol udp; }
  ct helper sane-k { type "sane" protocol tcp; }
  chain out {
    type filter hook output priority 0;
    tcp dport 21 ct helper set "ftp-k"
    udp dport 69 ct helper set "tftp-k"
    udp dport 10080 ct helper set "amanda-k"
    tcp dport 6566 ct helper set "sane-k"
  }
}
"#;

const FTP_CLIENT: &str = r#"
import ftplib, sys
host, src = sys.argv[1], sys.argv[2]
for pasv in (True, False):
    f = ftplib.FTP()
    f.connect(host, 21, timeout=5, source_address=(src, 0))
    f.login()
    f.set_pasv(pasv)
    out = []
    f.retrlines('RETR f.txt', out.append)
    assert out == ['hello'], out
    f.quit()
print('ftp ok')
"#;

const AMANDA: &str = r#"
import socket
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(('127.0.0.2', 10080))
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(('127.0.0.1', 850))
server.sendto(b'Amanda 2.6 REQ HANDLE 000-00000000 SEQ 1\nSECURITY USER amandabackup\nSERVICE sendbackup\nOPTIONS features=9ffe00;\n', ('127.0.0.2', 10080))
req, peer = client.recvfrom(4096)
client.sendto(b'Amanda 2.6 REP HANDLE 000-00000000 SEQ 1\nCONNECT DATA 50001 MESG 50002 INDEX 50003\nOPTIONS features=9ffe00;\n', peer)
server.settimeout(2)
server.recvfrom(4096)
print('amanda ok')
"#;

const SANE: &str = r#"
import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.2', 6566))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    req = c.recv(8)
    assert req[:4] == b'\x00\x00\x00\x07', req
    # status SUCCESS, zero, port 40123, byte order word
    c.sendall(b'\x00\x00\x00\x00\x00\x00\x9c\xbb\x00\x00\x12\x34')
    c.recv(1)
    c.close()
t = threading.Thread(target=serve)
t.start()
s = socket.create_connection(('127.0.0.2', 6566), source_address=('127.0.0.1', 0))
s.sendall(b'\x00\x00\x00\x07\x00\x00\x00\x00')
s.recv(12)
s.close()
t.join()
print('sane ok')
"#;

/// An expectation as `conntrack -E expect` shows it, timeout left out.
fn kernel_key(line: &str) -> Option<String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.first() != Some(&"[NEW]") {
        return None;
    }
    let values: Vec<&str> = fields
        .iter()
        .filter_map(|f| f.split_once('=').map(|(_, v)| v))
        .collect();
    // proto src dst sport dport mask-src mask-dst sport dport
    // master-src master-dst sport dport class helper
    let v = |i: usize| values.get(i).copied().unwrap_or("?");
    Some(format!(
        "proto={} {}->{}:{} mask-src={} master={}:{}->{}:{} helper={}",
        v(0),
        v(1),
        v(2),
        v(4),
        v(5),
        v(9),
        v(11),
        v(10),
        v(12),
        v(14)
    ))
}

fn our_key(e: &Expect) -> String {
    let t = e.tuple.as_ref().expect("tuple");
    let m = e.mask.as_ref().expect("mask");
    let master = e.master.as_ref().expect("master");
    format!(
        "proto={} {}->{}:{} mask-src={} master={}:{}->{}:{} helper={}",
        t.l4proto,
        t.src,
        t.dst,
        t.dst_port.unwrap_or(0),
        m.src,
        master.src,
        master.src_port.unwrap_or(0),
        master.dst,
        master.dst_port.unwrap_or(0),
        e.helper.as_deref().unwrap_or("?")
    )
}

#[test]
fn our_helpers_expect_what_the_kernel_helpers_expect() {
    if !available("our_helpers_expect_what_the_kernel_helpers_expect") {
        return;
    }
    let have = |p: &str| std::path::Path::new(p).exists();
    assert!(
        have("/usr/lib/python3/dist-packages/pyftpdlib")
            && have("/usr/sbin/in.tftpd")
            && have("/usr/bin/tftp"),
        "needs python3-pyftpdlib, tftpd-hpa and tftp-hpa (scripts/lib/test-deps.sh installs them)"
    );
    let ns = Ns::new();
    // The servers' own address (in.tftpd binds only configured ones).
    ns.ok("ip", &["addr", "add", "127.0.0.2/8", "dev", "lo"]);
    let nft = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(NFT.as_bytes())?;
            c.wait()
        })
        .expect("nft");
    assert!(nft.success(), "nft ruleset");
    for (args, queue) in [
        (["-p", "tcp", "--dport", "21"], "1"),
        (["-p", "tcp", "--sport", "21"], "1"),
        (["-p", "udp", "--dport", "69"], "2"),
        (["-p", "udp", "--dport", "10080"], "3"),
        (["-p", "udp", "--sport", "10080"], "3"),
        (["-p", "tcp", "--dport", "6566"], "4"),
        (["-p", "tcp", "--sport", "6566"], "4"),
    ] {
        let mut all = vec!["-A", "OUTPUT"];
        all.extend(args);
        all.extend(["-j", "NFQUEUE", "--queue-num", queue]);
        ns.ok("iptables-legacy", &all);
        if queue == "1" {
            ns.ok("ip6tables-legacy", &all);
        }
    }
    let root = tempfile_dir();
    std::fs::write(format!("{root}/f.txt"), "hello\n").expect("file");
    let parsed = conntrackd_config::parse_str(CONFIG);
    let planned = plan(
        parsed
            .config
            .expect("config")
            .helper
            .as_ref()
            .expect("helper"),
    )
    .expect("plan");
    let options = RunnerOptions {
        configure_stubs: false,
        create_expectations: false,
        record_expectations: true,
        ..RunnerOptions::default()
    };
    // Line-buffered: its output is read after it is killed.
    let mut events = ns.spawn("stdbuf", &["-oL", "conntrack", "-E", "expect"]);
    let running = Running::start(&ns, planned, options);
    let mut ftpd4 = ns.spawn(
        PYTHON,
        &[
            "-m",
            "pyftpdlib",
            "-i",
            "127.0.0.2",
            "-p",
            "21",
            "-d",
            &root,
        ],
    );
    let mut ftpd6 = ns.spawn(
        PYTHON,
        &["-m", "pyftpdlib", "-i", "::1", "-p", "21", "-d", &root],
    );
    let mut tftpd = ns.spawn("in.tftpd", &["-L", "-a", "127.0.0.2:69", "-s", &root]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        ns.python_with(PYTHON, FTP_CLIENT, &["127.0.0.2", "127.0.0.1"])
            .contains("ftp ok")
    );
    assert!(
        ns.python_with(PYTHON, FTP_CLIENT, &["::1", "::1"])
            .contains("ftp ok")
    );
    let got = ns.ok(
        "sh",
        &[
            "-c",
            &format!("cd {root} && tftp -m binary 127.0.0.2 -c get f.txt got.txt && cat got.txt"),
        ],
    );
    assert_eq!(got.trim(), "hello");
    assert!(ns.python_with(PYTHON, AMANDA, &[]).contains("amanda ok"));
    assert!(ns.python_with(PYTHON, SANE, &[]).contains("sane ok"));
    std::thread::sleep(Duration::from_millis(300));
    let mut runner = running.stop();
    for child in [&mut ftpd4, &mut ftpd6, &mut tftpd, &mut events] {
        let _ = child.kill();
    }
    for child in [&mut ftpd4, &mut ftpd6, &mut tftpd] {
        let _ = child.wait();
    }
    let out = events.wait_with_output().expect("events");
    let kernel: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(kernel_key)
        .collect();
    let ours: BTreeSet<String> = runner.take_recorded().iter().map(our_key).collect();
    let helpers: BTreeSet<&str> = ["ftp", "tftp", "amanda", "sane"].into();
    for name in helpers {
        assert!(
            kernel
                .iter()
                .any(|k| k.ends_with(&format!("helper={name}"))),
            "the kernel's {name} helper expected nothing: {kernel:#?}"
        );
    }
    assert_eq!(ours, kernel, "ours (left) and the kernel's (right)");
    // Per family, one FTP session in passive and one in active mode; one
    // TFTP transfer; three Amanda streams; one SANE start. (On lo the
    // kernel's helper sees each packet twice, at output and at input, and
    // replaces its expectation with an identical one: compared as sets.)
    assert_eq!(kernel.len(), 2 + 2 + 1 + 3 + 1, "{kernel:#?}");
    let _ = std::fs::remove_dir_all(&root);
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("helperd-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir.to_string_lossy().into_owned()
}
