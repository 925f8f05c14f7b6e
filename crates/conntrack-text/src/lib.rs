//! Plain and XML rendering of flows, in libnetfilter_conntrack 1.0.9's
//! layout (docs/control-and-cli.md §5.3), as conntrackd and `conntrack -L` print them.

use std::fmt::Write;

use conntrack_model::{Conntrack, Tuple, consts};

/// What to include besides the flow itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainOptions {
    /// Print the timeout (kernel dumps); conntrackd's cache dumps strip it.
    pub show_timeout: bool,
    /// Print `use=N` (kernel dumps).
    pub show_use: bool,
}

/// Renders one flow in the plain format, without a trailing newline.
pub fn plain(ct: &Conntrack, opts: PlainOptions) -> String {
    let mut out = String::with_capacity(192);
    write_plain(&mut out, ct, opts);
    out
}

/// Appends the plain rendering of `ct` to `out`.
pub fn write_plain(out: &mut String, ct: &Conntrack, opts: PlainOptions) {
    let start = out.len();
    let proto = ct.l4proto().unwrap_or(0);
    let _ = write!(out, "{:<8} {} ", consts::l4proto_name(proto), proto);
    if opts.show_timeout
        && let Some(t) = ct.timeout
    {
        let _ = write!(out, "{t} ");
    }
    match proto {
        consts::IPPROTO_TCP => {
            if let Some(name) = ct
                .tcp_state()
                .and_then(|s| consts::tcp_state::NAMES.get(usize::from(s)))
            {
                let _ = write!(out, "{name} ");
            }
        }
        consts::IPPROTO_SCTP => {
            if let Some(name) = ct
                .sctp
                .as_ref()
                .and_then(|s| s.state)
                .and_then(|s| consts::sctp_state::NAMES.get(usize::from(s)))
            {
                let _ = write!(out, "{name} ");
            }
        }
        consts::IPPROTO_DCCP => {
            if let Some(name) = ct
                .dccp
                .as_ref()
                .and_then(|s| s.state)
                .and_then(|s| consts::dccp_state::NAMES.get(usize::from(s)))
            {
                let _ = write!(out, "{name} ");
            }
        }
        _ => {}
    }
    if let Some(orig) = &ct.orig {
        write_tuple(out, orig);
        if let Some(zone) = orig.zone {
            let _ = write!(out, "zone-orig={zone} ");
        }
    }
    if let Some(c) = &ct.counters_orig {
        let _ = write!(out, "packets={} bytes={} ", c.packets, c.bytes);
    }
    if ct
        .status
        .is_some_and(|s| s & consts::status::SEEN_REPLY == 0)
    {
        out.push_str("[UNREPLIED] ");
    }
    if let Some(reply) = &ct.reply {
        write_tuple(out, reply);
        if let Some(zone) = reply.zone {
            let _ = write!(out, "zone-reply={zone} ");
        }
    }
    if let Some(c) = &ct.counters_reply {
        let _ = write!(out, "packets={} bytes={} ", c.packets, c.bytes);
    }
    if let Some(s) = ct.status {
        if s & consts::status::HW_OFFLOAD != 0 {
            out.push_str("[HW_OFFLOAD] ");
        } else if s & consts::status::OFFLOAD != 0 {
            out.push_str("[OFFLOAD] ");
        } else if s & consts::status::ASSURED != 0 {
            out.push_str("[ASSURED] ");
        }
    }
    if let Some(m) = ct.mark {
        let _ = write!(out, "mark={m} ");
    }
    if let Some(m) = ct.secmark {
        let _ = write!(out, "secmark={m} ");
    }
    if let Some(s) = &ct.secctx {
        let _ = write!(out, "secctx={s} ");
    }
    if let Some(z) = ct.zone {
        let _ = write!(out, "zone={z} ");
    }
    if let Some(ts) = &ct.timestamp
        && let (Some(start), Some(stop)) = (ts.start, ts.stop)
    {
        let _ = write!(
            out,
            "delta-time={} ",
            stop.saturating_sub(start) / 1_000_000_000
        );
    }
    if let Some(h) = &ct.helper {
        let _ = write!(out, "helper={h} ");
    }
    if opts.show_use
        && let Some(u) = ct.use_count
    {
        let _ = write!(out, "use={u} ");
    }
    if out.len() > start && out.ends_with(' ') {
        out.pop();
    }
}

fn write_tuple(out: &mut String, t: &Tuple) {
    let _ = write!(out, "src={} dst={} ", t.src, t.dst);
    if consts::is_icmp(t.l4proto) {
        if let (Some(ty), Some(code), Some(id)) = (t.icmp_type, t.icmp_code, t.icmp_id) {
            let _ = write!(out, "type={ty} code={code} id={id} ");
        }
    } else if t.l4proto == consts::IPPROTO_GRE {
        if let (Some(s), Some(d)) = (t.src_port, t.dst_port) {
            let _ = write!(out, "srckey=0x{s:x} dstkey=0x{d:x} ");
        }
    } else if let (Some(s), Some(d)) = (t.src_port, t.dst_port) {
        let _ = write!(out, "sport={s} dport={d} ");
    }
}

/// Renders one flow as the `<flow>…</flow>` XML element of §5.2.
pub fn xml(ct: &Conntrack) -> String {
    let mut out = String::from("<flow>");
    let proto = ct.l4proto().unwrap_or(0);
    match &ct.orig {
        Some(t) => xml_meta(&mut out, "original", t),
        None => xml_empty_meta(&mut out, "original"),
    }
    match &ct.reply {
        Some(t) => xml_meta(&mut out, "reply", t),
        None => xml_empty_meta(&mut out, "reply"),
    }
    out.push_str("<meta direction=\"independent\">");
    if proto == consts::IPPROTO_TCP
        && let Some(name) = ct
            .tcp_state()
            .and_then(|s| consts::tcp_state::NAMES.get(usize::from(s)))
    {
        let _ = write!(out, "<state>{name}</state>");
    }
    if let Some(t) = ct.timeout {
        let _ = write!(out, "<timeout>{t}</timeout>");
    }
    if let Some(m) = ct.mark {
        let _ = write!(out, "<mark>{m}</mark>");
    }
    if let Some(m) = ct.secmark {
        let _ = write!(out, "<secmark>{m}</secmark>");
    }
    if let Some(z) = ct.zone {
        let _ = write!(out, "<zone>{z}</zone>");
    }
    if let Some(u) = ct.use_count {
        let _ = write!(out, "<use>{u}</use>");
    }
    if let Some(id) = ct.id {
        let _ = write!(out, "<id>{id}</id>");
    }
    if let Some(s) = ct.status {
        if s & consts::status::SEEN_REPLY == 0 {
            out.push_str("<unreplied/>");
        }
        if s & consts::status::ASSURED != 0 {
            out.push_str("<assured/>");
        }
    }
    if let Some(h) = &ct.helper {
        let _ = write!(out, "<helper>{}</helper>", escape(h));
    }
    out.push_str("</meta></flow>");
    out
}

fn xml_meta(out: &mut String, dir: &str, t: &Tuple) {
    let (l3num, l3name) = if t.family() == consts::AF_INET6 {
        (10, "ipv6")
    } else {
        (2, "ipv4")
    };
    let _ = write!(
        out,
        "<meta direction=\"{dir}\"><layer3 protonum=\"{l3num}\" protoname=\"{l3name}\"><src>{}</src><dst>{}</dst></layer3><layer4 protonum=\"{}\" protoname=\"{}\">",
        t.src,
        t.dst,
        t.l4proto,
        consts::l4proto_name(t.l4proto)
    );
    if let (Some(s), Some(d)) = (t.src_port, t.dst_port) {
        let _ = write!(out, "<sport>{s}</sport><dport>{d}</dport>");
    } else if let (Some(ty), Some(code), Some(id)) = (t.icmp_type, t.icmp_code, t.icmp_id) {
        let _ = write!(out, "<type>{ty}</type><code>{code}</code><id>{id}</id>");
    }
    out.push_str("</layer4>");
    if let Some(z) = t.zone {
        let _ = write!(out, "<zone>{z}</zone>");
    }
    out.push_str("</meta>");
}

fn xml_empty_meta(out: &mut String, dir: &str) {
    let _ = write!(
        out,
        "<meta direction=\"{dir}\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta>"
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders one expectation in the plain format of docs/control-and-cli.md §5.4
/// (without conntrackd's suffixes).
pub fn expect_plain(exp: &conntrack_model::Expect, show_timeout: bool) -> String {
    let mut out = String::new();
    if show_timeout && let Some(t) = exp.timeout {
        let _ = write!(out, "{t} ");
    }
    let proto = exp.tuple.as_ref().map_or(0, |t| t.l4proto);
    let _ = write!(out, "proto={proto} ");
    if let Some(t) = &exp.tuple {
        write_tuple(&mut out, t);
    }
    if let Some(m) = &exp.mask {
        let _ = write!(out, "mask-src={} mask-dst={} ", m.src, m.dst);
        if let (Some(s), Some(d)) = (m.src_port, m.dst_port) {
            let _ = write!(out, "sport={s} dport={d} ");
        }
    }
    if let Some(m) = &exp.master {
        let _ = write!(out, "master-src={} master-dst={} ", m.src, m.dst);
        if let (Some(s), Some(d)) = (m.src_port, m.dst_port) {
            let _ = write!(out, "sport={s} dport={d} ");
        }
    }
    if let Some(z) = exp.zone {
        let _ = write!(out, "zone={z} ");
    }
    if let Some(flags) = exp.flags.filter(|f| *f != 0) {
        let names: Vec<&str> = [
            (consts::expect_flags::PERMANENT, "PERMANENT"),
            (consts::expect_flags::INACTIVE, "INACTIVE"),
            (consts::expect_flags::USERSPACE, "USERSPACE"),
        ]
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
        if !names.is_empty() {
            let _ = write!(out, "{} ", names.join(","));
        }
    }
    if let Some(c) = exp.class {
        let _ = write!(out, "class={c} ");
    }
    if let Some(h) = &exp.helper {
        let _ = write!(out, "helper={h} ");
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Renders one expectation as the `<flow>…</flow>` element of §5.4.
pub fn expect_xml(exp: &conntrack_model::Expect) -> String {
    let parts = [
        ("expected", exp.tuple.as_ref()),
        ("mask", exp.mask.as_ref()),
        ("master", exp.master.as_ref()),
    ];
    let l3 = exp.tuple.as_ref().map_or(consts::AF_INET, Tuple::family);
    let (l3num, l3name) = if l3 == consts::AF_INET6 {
        (10, "ipv6")
    } else {
        (2, "ipv4")
    };
    let proto = exp.tuple.as_ref().map_or(0, |t| t.l4proto);
    let mut out = format!("<flow><layer3 protonum=\"{l3num}\" protoname=\"{l3name}\">");
    for (name, t) in parts {
        if let Some(t) = t {
            let _ = write!(
                out,
                "<{name}><src>{}</src><dst>{}</dst></{name}>",
                t.src, t.dst
            );
        }
    }
    let _ = write!(
        out,
        "</layer3><layer4 protonum=\"{proto}\" protoname=\"{}\">",
        consts::l4proto_name(proto)
    );
    for (name, t) in parts {
        if let Some((s, d)) = t.and_then(|t| t.src_port.zip(t.dst_port)) {
            let _ = write!(out, "<{name}><sport>{s}</sport><dport>{d}</dport></{name}>");
        }
    }
    out.push_str("</layer4><meta>");
    if let Some(h) = &exp.helper {
        let _ = write!(out, "<helper-name>{}</helper-name>", escape(h));
    }
    if let Some(c) = exp.class {
        let _ = write!(out, "<class>{c}</class>");
    }
    out.push_str("</meta></flow>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::TcpInfo;

    fn spec_flow() -> Conntrack {
        let orig = Tuple::new(
            "192.168.10.1".parse().expect("ip"),
            "192.168.20.2".parse().expect("ip"),
            6,
        )
        .with_ports(40000, 80);
        Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig),
            status: Some(consts::status::ASSURED | consts::status::SEEN_REPLY),
            timeout: Some(118),
            mark: Some(7),
            use_count: Some(1),
            tcp: Some(TcpInfo {
                state: Some(consts::tcp_state::ESTABLISHED),
                ..TcpInfo::default()
            }),
            ..Conntrack::default()
        }
    }

    #[test]
    fn internal_cache_line_matches_the_spec_capture() {
        assert_eq!(
            plain(&spec_flow(), PlainOptions::default()),
            "tcp      6 ESTABLISHED src=192.168.10.1 dst=192.168.20.2 sport=40000 dport=80 src=192.168.20.2 dst=192.168.10.1 sport=80 dport=40000 [ASSURED] mark=7"
        );
    }

    #[test]
    fn kernel_dump_line_has_timeout_and_use() {
        let opts = PlainOptions {
            show_timeout: true,
            show_use: true,
        };
        assert_eq!(
            plain(&spec_flow(), opts),
            "tcp      6 118 ESTABLISHED src=192.168.10.1 dst=192.168.20.2 sport=40000 dport=80 src=192.168.20.2 dst=192.168.10.1 sport=80 dport=40000 [ASSURED] mark=7 use=1"
        );
    }

    #[test]
    fn external_icmp_and_udp_lines() {
        let icmp = Conntrack {
            orig: Some(
                Tuple::new(
                    "10.1.1.1".parse().expect("ip"),
                    "10.2.2.2".parse().expect("ip"),
                    1,
                )
                .with_icmp(1234, 8, 0),
            ),
            status: Some(0),
            mark: Some(0),
            ..Conntrack::default()
        };
        assert_eq!(
            plain(&icmp, PlainOptions::default()),
            "icmp     1 src=10.1.1.1 dst=10.2.2.2 type=8 code=0 id=1234 [UNREPLIED] mark=0"
        );
        let udp = Conntrack {
            orig: Some(
                Tuple::new(
                    "10.1.1.5".parse().expect("ip"),
                    "10.2.2.9".parse().expect("ip"),
                    17,
                )
                .with_ports(5000, 53),
            ),
            status: Some(consts::status::CONFIRMED),
            mark: Some(0),
            ..Conntrack::default()
        };
        assert_eq!(
            plain(&udp, PlainOptions::default()),
            "udp      17 src=10.1.1.5 dst=10.2.2.9 sport=5000 dport=53 [UNREPLIED] mark=0"
        );
    }

    #[test]
    fn xml_of_an_external_object_has_an_empty_reply() {
        let mut ct = spec_flow();
        ct.reply = None;
        ct.timeout = None;
        ct.use_count = None;
        ct.mark = Some(42);
        ct.zone = Some(3);
        let x = xml(&ct);
        assert!(x.contains("<meta direction=\"reply\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta>"), "{x}");
        assert!(x.ends_with("<meta direction=\"independent\"><state>ESTABLISHED</state><mark>42</mark><zone>3</zone><assured/></meta></flow>"), "{x}");
    }

    #[test]
    fn expectation_renderings_match_the_spec_captures() {
        let ip = |s: &str| s.parse().expect("ip");
        let exp = conntrack_model::Expect {
            tuple: Some(Tuple::new(ip("10.88.0.1"), ip("10.88.0.1"), 6).with_ports(0, 10000)),
            mask: Some(
                Tuple::new(ip("255.255.255.255"), ip("255.255.255.255"), 6).with_ports(0, 65535),
            ),
            master: Some(Tuple::new(ip("10.88.0.1"), ip("10.88.0.1"), 6).with_ports(40021, 21)),
            class: Some(0),
            helper: Some("ftp".into()),
            ..conntrack_model::Expect::default()
        };
        assert_eq!(
            expect_plain(&exp, false),
            "proto=6 src=10.88.0.1 dst=10.88.0.1 sport=0 dport=10000 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.88.0.1 master-dst=10.88.0.1 sport=40021 dport=21 class=0 helper=ftp"
        );
        assert_eq!(
            expect_xml(&exp),
            "<flow><layer3 protonum=\"2\" protoname=\"ipv4\"><expected><src>10.88.0.1</src><dst>10.88.0.1</dst></expected><mask><src>255.255.255.255</src><dst>255.255.255.255</dst></mask><master><src>10.88.0.1</src><dst>10.88.0.1</dst></master></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><expected><sport>0</sport><dport>10000</dport></expected><mask><sport>0</sport><dport>65535</dport></mask><master><sport>40021</sport><dport>21</dport></master></layer4><meta><helper-name>ftp</helper-name><class>0</class></meta></flow>"
        );
    }
}
