//! Sync mode's I/O: the channels, the commit and inject sockets, and the
//! glue between them and the sans-IO [`SyncCore`].

use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, Expect};
use conntrack_text::PlainOptions;
use conntrackd_config::{Config, SyncMode, SyncSection};
use conntrackd_core::expect_cache::ExpectFilter;
use conntrackd_core::filter::Filter;
use conntrackd_core::sync::{
    Inject, Protocol, SyncCore, SyncEvent, SyncSettings, prepare_create, prepare_update,
};
use ctnl::{CtSocket, groups, request};

use conntrackd_core::sync::auth::{AuthConfig, Key, KeyRing};
use synclink::{Link, LinkSpec, LinkState, Received, Transport};

use crate::logger;

/// `external inject:` counters (DisableExternalCache).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct InjectCounters {
    pub created: u64,
    pub create_failed: u64,
    pub updated: u64,
    pub update_failed: u64,
    pub destroyed: u64,
    pub destroy_failed: u64,
}

#[derive(Debug)]
pub struct Replication {
    pub core: SyncCore,
    pub links: Vec<Link>,
    pub inject: InjectCounters,
    /// Events caused by this socket have origin COMMIT (not echoed).
    pub commit_socket: CtSocket,
    /// Events caused by this socket have origin INJECT (ignored).
    pub inject_socket: CtSocket,
    /// `-t`: when the scheduled kernel flush runs.
    pub purge_at: Option<Instant>,
    purge_timeout: Duration,
    link_check_at: Instant,
    usable: Vec<bool>,
    /// The last `-c`, for metrics and `--json`.
    pub last_commit: Option<CommitReport>,
    /// External-cache positions a quiet commit wrote, for the internal
    /// cache once the client has its answer (see `finish_commit`).
    pending_adoption: Vec<u32>,
    rx: Vec<Received>,
}

/// What the last commit did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CommitReport {
    pub seconds: f64,
    pub committed: u64,
    pub failed: u64,
}

const LINK_CHECK: Duration = Duration::from_secs(1);
/// A partly filled batch waits this long for more messages.
const FLUSH_DELAY: Duration = Duration::from_millis(2);
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

fn protocol(mode: &SyncMode) -> Protocol {
    match mode {
        SyncMode::Ftfw {
            resend_queue_size,
            ack_window_size,
            ..
        } => Protocol::Ftfw {
            ack_window: *ack_window_size,
            resend_queue_size: *resend_queue_size as usize,
        },
        SyncMode::Alarm => Protocol::Alarm {
            refresh: Duration::ZERO,
            cache_timeout: Duration::ZERO,
        },
        SyncMode::Notrack { .. } => Protocol::Notrack,
    }
}

fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

impl Replication {
    pub fn new(
        config: &Config,
        now: Instant,
        filter: Option<Filter>,
        kernel_filtering: bool,
        expectations: Option<ExpectFilter>,
    ) -> Result<Replication, String> {
        let sync = config.sync.as_ref().ok_or("no Sync section")?;
        let mut links = Vec::new();
        for channel in &sync.channels {
            let mut link =
                Link::open(&link_spec(channel, sync.error_queue_length)).map_err(|e| {
                    logger::error(&format!(
                        "can't open {} channel: {e}",
                        channel.kind.keyword().to_lowercase()
                    ));
                    "initialization failed".to_string()
                })?;
            if let Some(limit) = config.general.event_iteration_limit {
                link.set_recv_limit(limit as usize);
            }
            links.push(link);
        }
        let mut protocol = protocol(&sync.mode);
        if let Protocol::Alarm {
            refresh,
            cache_timeout,
        } = &mut protocol
        {
            *refresh = Duration::from_secs(u64::from(sync.refresh_time));
            *cache_timeout = Duration::from_secs(u64::from(sync.cache_timeout));
        }
        let disable_internal_cache = match &sync.mode {
            SyncMode::Notrack {
                disable_internal_cache,
                ..
            } => *disable_internal_cache,
            SyncMode::Ftfw { .. } | SyncMode::Alarm => false,
        };
        let startup_resync = sync.mode.startup_resync();
        let seed = random_u64()?;
        let auth = match sync.key_file {
            None => None,
            Some(_) => {
                let keys = load_keys(sync)?;
                // From the OS random generator: sessions (and with them the
                // nonces) never repeat across nodes, restarts or clones.
                let session = random_u64()?;
                logger::notice(&format!(
                    "sync messages are {} ({}), key {}, session {session:016x}",
                    if sync.encrypt {
                        "encrypted"
                    } else {
                        "authenticated"
                    },
                    if sync.encrypt {
                        "XChaCha20-Poly1305"
                    } else {
                        "HMAC-SHA256"
                    },
                    key_id_text(&keys)
                ));
                Some(AuthConfig {
                    keys,
                    encrypt: sync.encrypt,
                    require_encryption: sync.require_encryption,
                    session,
                })
            }
        };
        let settings = SyncSettings {
            protocol,
            disable_internal_cache,
            disable_external_cache: sync.mode.external_cache_disabled(),
            commit_timeout: sync.commit_timeout,
            tcp_window_tracking: sync.tcp_window_tracking,
            expectations,
            hash_limit: config.general.hash_limit as usize,
            hash_size: config.general.hash_size as usize,
            filter,
            kernel_filtering,
            batch_sizes: links.iter().map(Link::batch_size).collect(),
            default_channel: sync.default_channel(),
            // A random start keeps our numbers apart from other peers'.
            initial_seq: (seed >> 16) as u32 ^ (seed as u32),
            seed,
            startup_resync,
            flush_delay: FLUSH_DELAY,
            auth,
            replicate_labels: sync.replicate_labels,
        };
        if startup_resync {
            logger::notice("resync requested");
        }
        let open = || {
            CtSocket::open(0, false).map_err(|e| {
                logger::error(&format!("can't open netlink handler: {e}"));
                "initialization failed".to_string()
            })
        };
        Ok(Replication {
            core: SyncCore::new(now, settings),
            usable: vec![true; links.len()],
            links,
            inject: InjectCounters::default(),
            commit_socket: open()?,
            inject_socket: open()?,
            purge_at: None,
            purge_timeout: Duration::from_secs(u64::from(sync.purge_timeout)),
            link_check_at: now + LINK_CHECK,
            last_commit: None,
            pending_adoption: Vec::new(),
            rx: Vec::new(),
        })
    }

    /// Resolves when a channel has something to do. Cancel-safe.
    pub async fn ready(&self) -> usize {
        let slot = |i: usize| async move {
            match self.links.get(i) {
                Some(link) => {
                    link.readable().await;
                    i
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = slot(0) => r,
            r = slot(1) => r,
            r = slot(2) => r,
            r = slot(3) => r,
        }
    }

    pub fn handle_ready(&mut self, now: Instant, channel: usize) {
        let Some(link) = self.links.get_mut(channel) else {
            return;
        };
        let mut rx = std::mem::take(&mut self.rx);
        link.recv(&mut rx);
        for item in rx.drain(..) {
            let authentic =
                self.core
                    .handle_datagram(now, channel, canonical(item.from.ip()), &item.bytes);
            if let (true, Some(connection)) = (authentic, item.connection) {
                link.vouch(connection);
            }
        }
        self.rx = rx;
    }

    /// SIGHUP: the keys of `Authentication` again, from the files the
    /// (re-read) configuration names. On an error the keys in use stay.
    pub fn reload_keys(&mut self, sync: &SyncSection) {
        if !self.core.authenticated() {
            if sync.key_file.is_some() {
                logger::warning(
                    "Authentication was added to the configuration: it takes effect at restart",
                );
            }
            return;
        }
        if sync.key_file.is_none() {
            logger::warning(
                "Authentication was removed from the configuration: it takes effect at restart; the keys stay",
            );
            return;
        }
        match load_keys(sync) {
            Ok(keys) => {
                logger::notice(&format!("sync keys reloaded: key {}", key_id_text(&keys)));
                self.core
                    .set_auth_keys(keys, sync.encrypt, sync.require_encryption);
            }
            Err(e) => logger::error(&format!("{e}; the keys in use stay")),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.core.poll_timeout(),
            self.purge_at,
            Some(self.link_check_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers; returns true if the scheduled kernel flush is due.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.core.handle_timeout(now);
        if self.link_check_at <= now {
            self.link_check_at = now + LINK_CHECK;
            let usable: Vec<bool> = self
                .links
                .iter()
                .map(|l| l.link_state() == LinkState::Running)
                .collect();
            if usable != self.usable {
                self.usable.clone_from(&usable);
                self.core.handle_link_state(now, &usable);
            }
        }
        if self.purge_at.is_some_and(|at| at <= now) {
            self.purge_at = None;
            return true;
        }
        false
    }

    /// `-t`: schedules the selective kernel flush.
    pub fn schedule_purge(&mut self, now: Instant) {
        if self.purge_at.is_none() {
            logger::notice(&format!(
                "flushing conntrack table in {} secs",
                self.purge_timeout.as_secs()
            ));
            self.purge_at = Some(now + self.purge_timeout);
        }
    }

    /// Sends what the core produced and carries out its requests.
    /// `requests` is the daemon's general-purpose kernel socket. A channel
    /// that cannot take more holds the core back (its objects wait in the
    /// transmit queue); the loop calls this again once it can.
    pub fn flush(&mut self, now: Instant, requests: &mut CtSocket) {
        loop {
            while self
                .links
                .get(self.core.active_channel())
                .is_none_or(Link::wants_more)
                && let Some(tx) = self.core.poll_transmit(now)
            {
                if let Some(link) = self.links.get_mut(tx.channel) {
                    link.send(now, &tx.bytes);
                }
            }
            let Some(event) = self.core.poll_event() else {
                break;
            };
            match event {
                SyncEvent::Notice(text) => logger::notice(&text),
                SyncEvent::ChannelChanged { to, .. } => {
                    let name = self
                        .links
                        .get(to)
                        .and_then(|l| l.spec().interface.clone())
                        .unwrap_or_default();
                    logger::notice(&format!("device `{name}' becomes dedicated link"));
                }
                SyncEvent::Inject(op) => self.inject(op),
                SyncEvent::DumpKernelForBulk => match requests.dump_conntrack() {
                    Ok(flows) => {
                        for ct in flows {
                            self.core.send_direct(ct);
                        }
                    }
                    Err(e) => logger::error(&format!("can't dump the kernel table: {e}")),
                },
            }
        }
    }

    fn apply_one(
        &mut self,
        ct: &Conntrack,
        build: fn(&mut Vec<u8>, u32, &Conntrack),
    ) -> Result<(), i32> {
        match self
            .inject_socket
            .apply_batch(std::slice::from_ref(ct), build)
        {
            Ok(results) => results.into_iter().next().unwrap_or(Err(libc::EIO)),
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    /// DisableExternalCache: a received message goes to the kernel
    /// (sync-modes.md §8.1).
    fn inject(&mut self, op: Inject) {
        let twt = self.core.settings().tcp_window_tracking;
        let plain = |ct: &Conntrack| conntrack_text::plain(ct, PlainOptions::default());
        match op {
            Inject::CtNew(ct) => {
                let create = prepare_create(&ct, ct.timeout.unwrap_or(0), twt);
                let result = match self.apply_one(&create, request::create) {
                    Err(EEXIST) => {
                        let _ = self.apply_one(&create, request::delete);
                        self.apply_one(&create, request::create).map_err(|e| {
                            logger::error(&format!(
                                "could not add new ct entry, even when deleting it first: {}",
                                errno_text(e)
                            ));
                        })
                    }
                    Err(e) => {
                        logger::error(&format!("could not add new ct entry: {}", errno_text(e)));
                        Err(())
                    }
                    Ok(()) => Ok(()),
                };
                if result.is_ok() {
                    self.inject.created += 1;
                } else {
                    logger::error(&plain(&create));
                    self.inject.create_failed += 1;
                }
            }
            Inject::CtUpdate(ct) => {
                let update = prepare_update(&ct, ct.timeout.unwrap_or(0), twt);
                let create = prepare_create(&ct, ct.timeout.unwrap_or(0), twt);
                let result = match self.apply_one(&update, request::update) {
                    Ok(()) => Ok(()),
                    Err(ENOENT) => self.apply_one(&create, request::create).map_err(|e| {
                        logger::error(&format!(
                            "could not update ct entry, even if creating it instead: {}",
                            errno_text(e)
                        ));
                    }),
                    Err(_) => {
                        let _ = self.apply_one(&create, request::delete);
                        self.apply_one(&create, request::create).map_err(|e| {
                            logger::error(&format!(
                                "could not update ct entry, even when deleting it first: {}",
                                errno_text(e)
                            ));
                        })
                    }
                };
                if result.is_ok() {
                    self.inject.updated += 1;
                } else {
                    self.inject.update_failed += 1;
                }
            }
            Inject::CtDelete(ct) => match self.apply_one(&ct, request::delete) {
                Ok(()) | Err(ENOENT) => self.inject.destroyed += 1,
                Err(e) => {
                    logger::error(&format!("could not destroy ct entry: {}", errno_text(e)));
                    self.inject.destroy_failed += 1;
                }
            },
            Inject::ExpNew(exp) => {
                if let Err(e) = self.create_expect(&exp) {
                    logger::error(&format!("could not add new exp entry: {}", errno_text(e)));
                }
            }
            Inject::ExpDelete(exp) => {
                let result = self
                    .inject_socket
                    .request_ack(|buf, seq| request::delete_expect(buf, seq, &exp));
                if let Ok(Err(e)) = result
                    && e != ENOENT
                {
                    logger::error(&format!("could not delete exp entry: {}", errno_text(e)));
                }
            }
        }
    }

    fn create_expect(&mut self, exp: &Expect) -> Result<(), i32> {
        let socket = &mut self.inject_socket;
        let mut once = || match socket.request_ack(|buf, seq| request::create_expect(buf, seq, exp))
        {
            Ok(r) => r,
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        match once() {
            Err(EEXIST) => {
                let _ = socket.request_ack(|buf, seq| request::delete_expect(buf, seq, exp));
                match socket.request_ack(|buf, seq| request::create_expect(buf, seq, exp)) {
                    Ok(r) => r,
                    Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
                }
            }
            other => other,
        }
    }

    /// `-c`: writes the external cache into the kernel, in batches
    /// (sync-modes.md §8.2). Returns when done.
    ///
    /// With `events` (the event socket, when an internal cache wants the
    /// committed flows), the commit runs quiet: the socket leaves the NEW
    /// group, so the kernel does not build an event per committed flow —
    /// about half of a large commit's time — and the flows enter the
    /// internal cache straight from the external one, right after the
    /// reply (`finish_commit`). The first entry
    /// that has to be deleted and recreated (it existed already) ends the
    /// quiet part: its DESTROY event is on its way, so from then on events
    /// flow as usual. NEW events of flows others create meanwhile are
    /// missed; the flow is cached at its first UPDATE event.
    pub fn commit(&mut self, now: Instant, flows: bool, expects: bool, events: Option<&CtSocket>) {
        self.purge_at = None;
        let started = Instant::now();
        let (mut committed_total, mut failed_total) = (0u64, 0u64);
        if flows {
            // In chunks: the requests of a large cache are never all in
            // memory at once.
            const CHUNK: usize = 2048;
            let mut quiet =
                events.is_some_and(|socket| socket.set_event_group(groups::CT_NEW, false).is_ok());
            if quiet {
                self.core.prepare_adoption();
            }
            let (mut ok, mut failed) = (0, 0);
            let positions = self.core.commit_positions();
            for related in [false, true] {
                let mut at = 0;
                while at < positions {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    let mut chunk_positions = Vec::with_capacity(CHUNK);
                    while chunk.len() < CHUNK && at < positions {
                        if let Some(request) = self.core.commit_request_at(at, related, now) {
                            chunk.push(request);
                            chunk_positions.push(at);
                        }
                        at += 1;
                    }
                    let sent_quiet = quiet;
                    let outcome = commit_chunk(&mut self.commit_socket, &chunk, &mut || {
                        if quiet {
                            quiet = false;
                            rejoin_new_events(events);
                        }
                    });
                    ok += outcome.committed;
                    failed += chunk.len() - outcome.committed;
                    if sent_quiet {
                        let created = chunk_positions.iter().zip(&outcome.first_pass);
                        self.pending_adoption.extend(
                            created
                                .filter(|(_, first_pass)| **first_pass)
                                .map(|(position, _)| u32::try_from(*position).unwrap_or(u32::MAX)),
                        );
                    }
                }
            }
            if quiet {
                rejoin_new_events(events);
            }
            committed_total += ok as u64;
            failed_total += failed as u64;
            logger::notice(&format!("Committed {ok} new entries"));
            if failed > 0 {
                logger::notice(&format!("{failed} entries can't be committed"));
            }
        }
        if expects && self.core.expect.is_some() {
            let mut ok = 0;
            let mut failed = 0;
            for exp in &self.core.commit_expects() {
                match self.commit_expect(exp) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        logger::error(&format!("commit-create: {}", errno_text(e)));
                    }
                }
            }
            committed_total += ok as u64;
            failed_total += failed as u64;
            logger::notice(&format!("Committed {ok} new expectations"));
            if failed > 0 {
                logger::notice(&format!("{failed} expectations can't be committed"));
            }
        }
        let took = started.elapsed();
        self.last_commit = Some(CommitReport {
            seconds: took.as_secs_f64(),
            committed: committed_total,
            failed: failed_total,
        });
        logger::notice(&format!(
            "commit has taken {}.{:06} seconds",
            took.as_secs(),
            took.subsec_micros()
        ));
    }

    /// After a quiet commit's reply: its flows enter the internal cache,
    /// where 1.4.7 has them once it has read their NEW events, which also
    /// happens after its `-c` returned. Runs before any other input, so
    /// the external cache is as the commit left it.
    pub fn finish_commit(&mut self, now: Instant) {
        for position in std::mem::take(&mut self.pending_adoption) {
            self.core.adopt_committed_at(position as usize, now);
        }
    }

    fn commit_expect(&mut self, exp: &Expect) -> Result<(), i32> {
        let socket = &mut self.commit_socket;
        let create = |socket: &mut CtSocket| match socket
            .request_ack(|buf, seq| request::create_expect(buf, seq, exp))
        {
            Ok(r) => r,
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        match create(socket) {
            Err(EEXIST) => {
                let _ = socket.request_ack(|buf, seq| request::delete_expect(buf, seq, exp));
                create(socket)
            }
            other => other,
        }
    }

    /// The block of the active channel (`-s`, `-s network`).
    pub fn active_channel_block(&self, out: &mut String) {
        if let Some(link) = self.links.get(self.core.active_channel()) {
            channel_block(out, link, None);
        }
    }

    /// TCP connections refused because they did not come from the peer
    /// (our extension of `-s network`; absent while there are none, so
    /// that the report stays 1.4.7's).
    pub fn foreign_connections_block(&self, out: &mut String) {
        let refused: u64 = self
            .links
            .iter()
            .map(|l| l.counters().foreign_connections)
            .sum();
        if refused > 0 {
            let _ = write!(
                out,
                "TCP connections refused (not from the peer):\n\t{refused:>20}\n\n"
            );
        }
    }

    /// `-s link`: every channel with its state and role.
    pub fn link_blocks(&self, out: &mut String) {
        for (i, link) in self.links.iter().enumerate() {
            let role = if i == self.core.active_channel() {
                "ACTIVE"
            } else {
                "BACKUP"
            };
            let state = match link.link_state() {
                LinkState::Down => "DOWN",
                LinkState::NoCarrier => "NO-CARRIER",
                LinkState::Running => "RUNNING",
            };
            channel_block(out, link, Some((state, role)));
        }
    }

    pub fn error_queue(&self) -> (usize, usize, u64) {
        self.links
            .get(self.core.active_channel())
            .map(Link::error_queue)
            .filter(|q| q.1 > 0)
            .unwrap_or((0, 128, 0))
    }

    /// `external inject:` block.
    pub fn inject_block(&self, out: &mut String) {
        let c = &self.inject;
        let _ = write!(
            out,
            "external inject:\nconnections created:\t\t{:>12}\tfailed:\t{:>12}\nconnections updated:\t\t{:>12}\tfailed:\t{:>12}\nconnections destroyed:\t\t{:>12}\tfailed:\t{:>12}\n\n",
            c.created, c.create_failed, c.updated, c.update_failed, c.destroyed, c.destroy_failed
        );
    }
}

/// `multicast traffic (active device=IF):` and its counters; with
/// `state`, the `-s link` header instead.
fn channel_block(out: &mut String, link: &Link, state: Option<(&str, &str)>) {
    let name = match link.spec().transport {
        Transport::Multicast => "multicast",
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    let device = link.spec().interface.as_deref().unwrap_or("");
    match state {
        Some((status, role)) => {
            let _ = writeln!(
                out,
                "{name} traffic device={device} status={status} role={role}:"
            );
        }
        None => {
            let _ = write!(out, "{name} traffic (active device={device})");
            if let Some((server, client)) = link.tcp_state() {
                let word = |b: bool| if b { "connected" } else { "disconnected" };
                let _ = write!(out, " server={} client={}", word(server), word(client));
            }
            out.push_str(":\n");
        }
    }
    let c = link.counters();
    let _ = write!(
        out,
        "{:>20} Bytes sent {:>20} Bytes recv\n{:>20} Pckts sent {:>20} Pckts recv\n{:>20} Error send {:>20} Error recv\n\n",
        c.bytes_sent, c.bytes_recv, c.pkts_sent, c.pkts_recv, c.send_errors, c.recv_errors
    );
}

/// The channel's configuration in the socket layer's terms.
fn link_spec(channel: &conntrackd_config::Channel, error_queue_length: u32) -> LinkSpec {
    LinkSpec {
        transport: match channel.kind {
            conntrackd_config::ChannelKind::Multicast => Transport::Multicast,
            conntrackd_config::ChannelKind::Udp => Transport::Udp,
            conntrackd_config::ChannelKind::Tcp => Transport::Tcp,
        },
        address: channel
            .address
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        destination: channel.destination,
        ipv4_interface: channel.ipv4_interface,
        interface: channel.interface.clone(),
        port: channel.port,
        snd_buf: channel.snd_buf,
        rcv_buf: channel.rcv_buf,
        checksum: channel.checksum,
        error_queue_length: error_queue_length as usize,
    }
}

/// 64 bits from the OS random generator.
fn random_u64() -> Result<u64, String> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = bytes.get_mut(filled..).unwrap_or_default();
        match rustix::rand::getrandom(rest, rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("can't read the OS random generator: {e}")),
        }
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// The keys `Authentication` names: `KeyFile` to send (and accept), and
/// `AcceptKeyFile` to accept too.
fn load_keys(sync: &SyncSection) -> Result<KeyRing, String> {
    let read = |path: &Path| -> Result<Key, String> {
        let secret =
            std::fs::read(path).map_err(|e| format!("can't read `{}': {e}", path.display()))?;
        Key::new(&secret).ok_or_else(|| {
            format!(
                "key file `{}' is too short (at least {} bytes)",
                path.display(),
                conntrackd_core::sync::auth::MIN_KEY_LEN
            )
        })
    };
    let send = read(sync.key_file.as_deref().ok_or("no KeyFile")?)?;
    let accept = sync.accept_key_file.as_deref().map(read).transpose()?;
    Ok(KeyRing::new(send, accept.into_iter().collect()))
}

/// `1a2b3c4d` (and `+ 5e6f7a8b accepted`): key ids, never key material.
fn key_id_text(keys: &KeyRing) -> String {
    let hex = |id: [u8; 4]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut text = hex(keys.sending().id());
    for key in keys.accepted() {
        text.push_str(&format!(" (also accepting {})", hex(key.id())));
    }
    text
}

/// IPv4 peers seen through an IPv6 socket count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What a chunk of the commit did.
struct ChunkOutcome {
    /// Flows in the kernel now.
    committed: usize,
    /// Per request: created by the first, pipelined pass.
    first_pass: Vec<bool>,
}

/// Back in the NEW group after a quiet commit; if that fails, events are
/// lost from now on, which the log must say.
fn rejoin_new_events(events: Option<&CtSocket>) {
    if let Some(socket) = events
        && let Err(e) = socket.set_event_group(groups::CT_NEW, true)
    {
        logger::error(&format!(
            "can't listen to new conntrack events again: {e}; restart conntrackd"
        ));
    }
}

/// Creates in batches; entries that exist are deleted and created once
/// more, after `before_retry` ran.
fn commit_chunk(
    socket: &mut CtSocket,
    flows: &[Conntrack],
    before_retry: &mut dyn FnMut(),
) -> ChunkOutcome {
    // Pipelined; if an answer may have been lost, once more with an ACK per
    // request (a flow created the first time then reports EEXIST and is
    // recreated with the same attributes).
    let results = match socket
        .apply_pipelined(flows, request::create)
        .and_then(|piped| match piped {
            Some(results) => Ok(results),
            None => socket.apply_batch(flows, request::create),
        }) {
        Ok(r) => r,
        Err(e) => {
            logger::error(&format!("commit-create: {e}"));
            return ChunkOutcome {
                committed: 0,
                first_pass: vec![false; flows.len()],
            };
        }
    };
    let first_pass: Vec<bool> = results.iter().map(Result::is_ok).collect();
    let mut ok = 0;
    let mut retry = Vec::new();
    let mut failed = Vec::new();
    for (ct, result) in flows.iter().zip(results) {
        match result {
            Ok(()) => ok += 1,
            Err(EEXIST) => retry.push(ct.clone()),
            Err(e) => failed.push((ct, e)),
        }
    }
    if !retry.is_empty() {
        before_retry();
        let _ = socket.apply_batch(&retry, request::delete);
        match socket.apply_batch(&retry, request::create) {
            Ok(results) => {
                for (ct, result) in retry.iter().zip(results) {
                    match result {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            logger::error(&format!("commit-destroy: {}", errno_text(e)));
                            logger::error(&conntrack_text::plain(ct, PlainOptions::default()));
                        }
                    }
                }
            }
            Err(e) => logger::error(&format!("commit-create: {e}")),
        }
    }
    for (ct, e) in &failed {
        logger::error(&format!("commit-create: {}", errno_text(*e)));
        logger::error(&conntrack_text::plain(ct, PlainOptions::default()));
    }
    ChunkOutcome {
        committed: ok,
        first_pass,
    }
}
