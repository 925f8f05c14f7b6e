//! `General { … }` including `UNIX`, `Scheduler` and `Filter`, plus the
//! legacy top-level `IgnoreTrafficFor` / `IgnoreProtocol` blocks.

use crate::lexer::{Token, TokenKind};
use crate::limits::{MAX_FILE_PATH_LEN, MAX_PRIORITY, MAX_SOCKET_PATH_LEN};
use crate::model::{
    DEFAULT_EVENT_ITERATION_LIMIT, DEFAULT_HASH_LIMIT, DEFAULT_HASH_SIZE, DEFAULT_METRICS_PORT,
    DEFAULT_NETLINK_OVERRUN_RESYNC, MAX_EVENT_BATCH_DELAY,
};
use crate::model::{Policy, SchedulerType};
use crate::parser::{KeyBlock, PResult, Parser, key_block, parse_net};
use crate::protocols::protocol_number;
use crate::tcp_states::state_number;

/// `General { … }`.
pub(crate) const GENERAL: KeyBlock = key_block!("General");
/// `UNIX { … }`.
pub(crate) const UNIX: KeyBlock = key_block!("General.UNIX");
/// `Scheduler { … }`.
pub(crate) const SCHEDULER: KeyBlock = key_block!("General.Scheduler");
/// `Filter { … }`.
pub(crate) const FILTER: KeyBlock = key_block!("General.Filter");
/// An address list (`Address Accept|Ignore { … }`, `IgnoreTrafficFor`).
pub(crate) const ADDRESS_LIST: KeyBlock = key_block!("General.Filter.Address");
/// `General { Metrics { … } }` (our extension).
pub(crate) const METRICS: KeyBlock = key_block!("General.Metrics");

impl<'a> Parser<'a> {
    pub(crate) fn general(&mut self, opener: &Token<'a>) -> PResult<()> {
        self.block(opener, GENERAL, |p, t| p.general_item(t))
    }

    fn general_item(&mut self, t: Token<'a>) -> PResult<()> {
        if t.kind == TokenKind::Str && t.text == "Metrics" {
            return self.metrics(&t);
        }
        if t.kind == TokenKind::Str && t.text == "EventBatchDelay" {
            let (ms, span) = self.number(&t)?;
            if ms > MAX_EVENT_BATCH_DELAY {
                return Err(self.error(
                    span,
                    format!(
                        "`EventBatchDelay' must be at most {MAX_EVENT_BATCH_DELAY} (milliseconds)"
                    ),
                ));
            }
            self.config.general.event_batch_delay = ms;
            return Ok(());
        }
        if t.kind != TokenKind::Keyword {
            if self.legacy_ignored(&t)? {
                return Ok(());
            }
            return Err(self.unknown_item(&t, GENERAL));
        }
        match t.text {
            "HashSize" => {
                self.config.general.hash_size = self.number_or_default(&t, DEFAULT_HASH_SIZE)?
            }
            "HashLimit" => {
                self.config.general.hash_limit = self.number_or_default(&t, DEFAULT_HASH_LIMIT)?
            }
            "LogFile" => {
                if let Some(target) = self.log_target(
                    &t,
                    &format!("LogFile path is longer than {MAX_FILE_PATH_LEN} characters"),
                )? {
                    self.config.general.log_file = target;
                }
            }
            "Syslog" => {
                if let Some(f) = self.syslog(&t, false)? {
                    self.config.general.syslog = f;
                }
            }
            "LockFile" => {
                let too_long =
                    format!("LockFile path is longer than {MAX_FILE_PATH_LEN} characters");
                let path = self.path(&t, MAX_FILE_PATH_LEN, &too_long)?;
                self.config.general.lock_file = path.into();
            }
            "UNIX" => self.unix(&t)?,
            "NetlinkBufferSize" | "SocketBufferSize" => {
                self.config.general.netlink_buffer_size = self.number(&t)?.0;
                self.netlink_buffer_size_span = Some(t.span.clone());
            }
            "NetlinkBufferSizeMaxGrowth"
            | "SocketBufferSizeMaxGrown"
            | "SocketBufferSizeMaxGrowth" => {
                self.config.general.netlink_buffer_size_max_growth = self.number(&t)?.0;
            }
            "NetlinkOverrunResync" => {
                let v = self.peek().cloned();
                match v.as_ref().map(|v| v.kind) {
                    Some(TokenKind::Bool(on)) => {
                        self.bump();
                        self.config.general.netlink_overrun_resync =
                            on.then_some(DEFAULT_NETLINK_OVERRUN_RESYNC);
                    }
                    _ => {
                        let seconds = self.number_or_default(&t, DEFAULT_NETLINK_OVERRUN_RESYNC)?;
                        self.config.general.netlink_overrun_resync = Some(seconds);
                    }
                }
            }
            "NetlinkEventsReliable" => {
                self.config.general.netlink_events_reliable = self.boolean(&t)?
            }
            "EventIterationLimit" => {
                let limit = self.number_or_default(&t, DEFAULT_EVENT_ITERATION_LIMIT)?;
                self.config.general.event_iteration_limit = Some(limit);
            }
            "PollSecs" => {
                let (n, span) = self.number(&t)?;
                if n == 0 {
                    return Err(self.error(span, "`PollSecs' clause must be > 0"));
                }
                self.config.general.poll_secs = Some(n);
            }
            "Nice" => {
                match self.peek().cloned() {
                    Some(v) if v.kind == TokenKind::SignedNumber => {
                        self.bump();
                    }
                    other => {
                        let help = Some("`Nice' needs an explicit sign, e.g. `Nice -1'".to_owned());
                        return Err(self.syntax(
                            other.as_ref(),
                            "a signed number after `Nice'",
                            help,
                        ));
                    }
                }
                self.warn(
                    t.span.clone(),
                    "deprecated nice configuration, ignoring. The nice value can be set externally with nice(1) and renice(1).",
                );
            }
            "Scheduler" => self.scheduler(&t)?,
            "Systemd" => self.config.general.systemd = self.boolean(&t)?,
            "Filter" => self.filter(&t)?,
            _ => return Err(self.unknown_item(&t, GENERAL)),
        }
        Ok(())
    }

    fn unix(&mut self, opener: &Token<'a>) -> PResult<()> {
        const VALID: KeyBlock = UNIX;
        self.block(opener, VALID, |p, t| match t.text {
            "Path" if t.kind == TokenKind::Keyword => {
                let too_long = format!("Path is longer than {MAX_SOCKET_PATH_LEN} characters");
                let path = p.path(&t, MAX_SOCKET_PATH_LEN, &too_long)?;
                p.config.general.unix_path = Some(path.into());
                Ok(())
            }
            "MaxClients" | "ReplyTimeout" if t.kind == TokenKind::Str => {
                let (n, span) = p.number(&t)?;
                if n == 0 {
                    return Err(p.error(span, format!("`{}' must be > 0", t.text)));
                }
                if t.text == "MaxClients" {
                    p.config.general.max_clients = n;
                } else {
                    p.config.general.reply_timeout = n;
                }
                Ok(())
            }
            "Backlog" if t.kind == TokenKind::Keyword => {
                p.number(&t)?;
                p.warn(
                    t.span.clone(),
                    "deprecated unix backlog configuration, ignoring.",
                );
                Ok(())
            }
            _ => Err(p.unknown_item(&t, VALID)),
        })
    }

    /// `Metrics { IPv4_address A IPv6_address A Port N }` (our extension).
    /// Unlike the 1.4.7 clauses, a bad address is an error: a metrics
    /// endpoint silently not where it was asked for helps nobody.
    fn metrics(&mut self, opener: &Token<'a>) -> PResult<()> {
        const VALID: KeyBlock = METRICS;
        let metrics = self
            .config
            .general
            .metrics
            .get_or_insert_with(|| crate::model::Metrics {
                addresses: Vec::new(),
                port: DEFAULT_METRICS_PORT,
            })
            .clone();
        let mut metrics = metrics;
        let result = self.block(opener, VALID, |p, t| match t.text {
            "IPv4_address" | "IPv6_address" if t.kind == TokenKind::Keyword => {
                let value = p.ip_token(&t)?;
                let parsed = if t.text == "IPv4_address" {
                    value
                        .text
                        .parse::<std::net::Ipv4Addr>()
                        .map(std::net::IpAddr::V4)
                        .ok()
                } else {
                    value
                        .text
                        .parse::<std::net::Ipv6Addr>()
                        .map(std::net::IpAddr::V6)
                        .ok()
                };
                match parsed {
                    Some(ip) => {
                        metrics.addresses.push(ip);
                        Ok(())
                    }
                    None => Err(p.error(
                        value.span,
                        format!("{} is not a valid {} address", value.text, &t.text[..4]),
                    )),
                }
            }
            "Port" if t.kind == TokenKind::Keyword => {
                metrics.port = p.port(&t)?;
                Ok(())
            }
            _ => Err(p.unknown_item(&t, VALID)),
        });
        self.config.general.metrics = Some(metrics);
        result
    }

    fn scheduler(&mut self, opener: &Token<'a>) -> PResult<()> {
        const VALID: KeyBlock = SCHEDULER;
        self.block(opener, VALID, |p, t| match t.text {
            "Type" if t.kind == TokenKind::Keyword => {
                let v = p.string(&t, "a scheduler type (RR or FIFO)")?;
                let kind = match v.text.to_ascii_uppercase().as_str() {
                    "RR" => SchedulerType::Rr,
                    "FIFO" => SchedulerType::Fifo,
                    _ => {
                        return Err(p.error_help(
                            v.span.clone(),
                            format!("unknown scheduler `{}'", v.text),
                            "use `RR' or `FIFO'",
                        ));
                    }
                };
                p.config.general.scheduler.kind = Some(kind);
                Ok(())
            }
            "Priority" if t.kind == TokenKind::Keyword => {
                let (n, span) = p.number(&t)?;
                match u8::try_from(n) {
                    Ok(n) if n <= MAX_PRIORITY => {
                        p.config.general.scheduler.priority = Some(n);
                        Ok(())
                    }
                    _ => Err(p.error(span, format!("`Priority' must be [0, {MAX_PRIORITY}]"))),
                }
            }
            _ => Err(p.unknown_item(&t, VALID)),
        })
    }

    fn filter(&mut self, opener: &Token<'a>) -> PResult<()> {
        const VALID: KeyBlock = FILTER;
        let mut kernel = false;
        if self.peek().is_some_and(|t| t.is_kw("From")) {
            self.bump();
            match self.bump() {
                Some(t) if t.is_kw("Userspace") => {}
                Some(t) if t.is_kw("Kernelspace") => kernel = true,
                other => {
                    return Err(self.syntax(
                        other.as_ref(),
                        "`Userspace' or `Kernelspace' after `From'",
                        None,
                    ));
                }
            }
        }
        self.config.general.filter.from_kernelspace = kernel;
        self.config.general.filter.span = Some(opener.span.clone());
        self.block(opener, VALID, |p, t| {
            if t.kind != TokenKind::Keyword {
                return Err(p.unknown_item(&t, VALID));
            }
            match t.text {
                "Protocol" => {
                    let policy = p.policy(&t)?;
                    p.protocol_list(&t, policy)
                }
                "Address" => {
                    let policy = p.policy(&t)?;
                    p.address_list(&t, policy)
                }
                "State" => {
                    let policy = p.policy(&t)?;
                    p.state_list(&t, policy)
                }
                _ => Err(p.unknown_item(&t, VALID)),
            }
        })
    }

    fn policy(&mut self, key: &Token<'a>) -> PResult<Policy> {
        match self.peek().cloned() {
            Some(t) if t.is_kw("Accept") => {
                self.bump();
                Ok(Policy::Accept)
            }
            Some(t) if t.is_kw("Ignore") => {
                self.bump();
                Ok(Policy::Ignore)
            }
            other => {
                let expected = format!("`Accept' or `Ignore' after `{}'", key.text);
                Err(self.syntax(other.as_ref(), &expected, None))
            }
        }
    }

    /// `{ TCP UDP name … }` appended to the protocol filter.
    pub(crate) fn protocol_list(&mut self, opener: &Token<'a>, policy: Policy) -> PResult<()> {
        let mut protos = self
            .filter
            .protocol
            .take()
            .map(|(_, v)| v)
            .unwrap_or_default();
        let result = self.list(opener, |p, t| {
            let number = match (t.kind, t.text) {
                (TokenKind::Keyword, "TCP") => Some(6),
                (TokenKind::Keyword, "UDP") => Some(17),
                (TokenKind::Str, name) => {
                    let n = protocol_number(name);
                    if n.is_none() {
                        p.ignored(
                            t.span.clone(),
                            format!(
                                "getprotobyname() cannot find protocol `{name}' in /etc/protocols"
                            ),
                        );
                    }
                    n
                }
                _ => {
                    let help = (t.kind == TokenKind::Number)
                        .then(|| "use protocol names, not numbers".to_owned());
                    return Err(p.syntax(Some(&t), "a protocol name or `}'", help));
                }
            };
            if let Some(n) = number
                && !protos.contains(&n)
            {
                protos.push(n);
            }
            Ok(())
        });
        self.filter.protocol = Some((policy, protos));
        result
    }

    /// `{ IPv4_address A … IPv6_address B … }` appended to the address filter.
    pub(crate) fn address_list(&mut self, opener: &Token<'a>, policy: Policy) -> PResult<()> {
        const VALID: KeyBlock = ADDRESS_LIST;
        let mut nets = self
            .filter
            .address
            .take()
            .map(|(_, v)| v)
            .unwrap_or_default();
        let result = self.block(opener, VALID, |p, t| {
            let v6 = match (t.kind, t.text) {
                (TokenKind::Keyword, "IPv4_address") => false,
                (TokenKind::Keyword, "IPv6_address") => true,
                _ => return Err(p.unknown_item(&t, VALID)),
            };
            let v = p.ip_token(&t)?;
            match parse_net(v.text, v6) {
                Ok(net) => {
                    if nets.contains(&net) {
                        if !net.is_host() && !v6 {
                            p.warn(
                                v.span.clone(),
                                format!("netmask {} is repeated in the ignore pool", net.addr),
                            );
                        }
                    } else {
                        nets.push(net);
                    }
                }
                Err(message) => p.ignored(v.span.clone(), message),
            }
            Ok(())
        });
        self.filter.address = Some((policy, nets));
        result
    }

    /// `{ STATE … for TCP … }` appended to the state filter.
    pub(crate) fn state_list(&mut self, opener: &Token<'a>, policy: Policy) -> PResult<()> {
        let mut states = self.filter.state.take().map(|(_, v)| v).unwrap_or_default();
        let mut pending: Vec<u8> = Vec::new();
        self.expect_open(opener)?;
        let result = loop {
            let Some(t) = self.bump() else {
                break Err(self.syntax(None, "`}'", None));
            };
            match (t.kind, t.text) {
                (TokenKind::CloseBrace, _) if pending.is_empty() => break Ok(()),
                (TokenKind::CloseBrace, _) => {
                    // The list is closed: report, but there is nothing to skip.
                    self.syntax(
                        Some(&t),
                        "`for TCP'",
                        Some("end each state list with `for TCP'".to_owned()),
                    );
                    break Ok(());
                }
                (TokenKind::Keyword, "for") => match self.bump() {
                    Some(proto) if proto.is_kw("TCP") => {
                        for s in pending.drain(..) {
                            if !states.contains(&s) {
                                states.push(s);
                            }
                        }
                    }
                    other => {
                        let help = Some("only TCP states can be filtered".to_owned());
                        break Err(self.syntax(other.as_ref(), "`TCP' after `for'", help));
                    }
                },
                (TokenKind::Keyword, name) => match state_number(name) {
                    Some(s) => pending.push(s),
                    None => break Err(self.syntax(Some(&t), "a TCP state or `for TCP'", None)),
                },
                _ => break Err(self.syntax(Some(&t), "a TCP state or `for TCP'", None)),
            }
        };
        self.filter.state = Some((policy, states));
        if result.is_err() {
            // Resynchronise at the end of this list.
            self.recover(&[]);
            if self.peek_kind() == Some(TokenKind::CloseBrace) {
                self.bump();
            }
        }
        Ok(())
    }

    /// Legacy `Replicate STATE … for TCP` inside Sync.
    pub(crate) fn legacy_replicate(&mut self, key: &Token<'a>) -> PResult<()> {
        self.legacy_mapped(key, "`General { Filter { State Accept { … for TCP } } }'");
        let mut states = self.filter.state.take().map(|(_, v)| v).unwrap_or_default();
        loop {
            let t = self.bump();
            match t {
                Some(t) if t.kind == TokenKind::Keyword && state_number(t.text).is_some() => {
                    if let Some(s) = state_number(t.text)
                        && !states.contains(&s)
                    {
                        states.push(s);
                    }
                }
                Some(t) if t.is_kw("for") => {
                    let proto = self.bump();
                    self.filter.state = Some((Policy::Accept, states));
                    return match proto {
                        Some(p) if p.is_kw("TCP") => Ok(()),
                        other => Err(self.syntax(other.as_ref(), "`TCP' after `for'", None)),
                    };
                }
                other => {
                    self.filter.state = Some((Policy::Accept, states));
                    return Err(self.syntax(other.as_ref(), "a TCP state or `for TCP'", None));
                }
            }
        }
    }

    pub(crate) fn legacy_ignore_traffic(&mut self, key: &Token<'a>) -> PResult<()> {
        self.legacy_mapped(key, "`General { Filter { Address Ignore { … } } }'");
        self.address_list(key, Policy::Ignore)
    }

    pub(crate) fn legacy_ignore_protocol(&mut self, key: &Token<'a>) -> PResult<()> {
        self.legacy_mapped(key, "`General { Filter { Protocol Ignore { … } } }'");
        self.protocol_list(key, Policy::Ignore)
    }
}
