//! Sync mode's I/O around the sans-IO [`SyncCore`]: the channels
//! ([`channels`]), the kernel writes ([`writes`]), the keys ([`keys`]),
//! and the scheduled kernel flush of `-t`.

mod channels;
mod keys;
mod turns;
mod writes;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use conntrackd_config::{Config, DEFAULT_ERROR_QUEUE_LENGTH, SyncMode, SyncSection};
use conntrackd_core::expect_cache::ExpectFilter;
use conntrackd_core::filter::Filter;
use conntrackd_core::sync::{Protocol, SyncCore, SyncEvent, SyncSettings};
use ctnl::CtSocket;
use synclink::{Link, LinkState, Received};

use crate::logger;
use writes::KernelWriter;
pub use writes::{CommitReport, InjectCounters};

/// Channel states are looked at this often (docs/sync-modes.md §13).
const LINK_CHECK: Duration = Duration::from_secs(1);
/// A partly filled batch waits this long for more messages.
const FLUSH_DELAY: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub struct Replication {
    core: SyncCore,
    links: Vec<Link>,
    writer: KernelWriter,
    link_check_at: Instant,
    usable: Vec<bool>,
    rx: Vec<Received>,
    /// The channel `ready` asks first: the one after the last that was
    /// ready, so that a busy channel cannot starve the others.
    turns: turns::Turns,
}

fn protocol(sync: &SyncSection) -> Protocol {
    match &sync.mode {
        SyncMode::Ftfw {
            resend_queue_size,
            ack_window_size,
            ..
        } => Protocol::Ftfw {
            ack_window: *ack_window_size,
            resend_queue_size: *resend_queue_size as usize,
        },
        SyncMode::Alarm => Protocol::Alarm {
            refresh: Duration::from_secs(u64::from(sync.refresh_time)),
            cache_timeout: Duration::from_secs(u64::from(sync.cache_timeout)),
        },
        SyncMode::Notrack { .. } => Protocol::Notrack,
    }
}

/// Why replication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SyncStartError {
    /// The reason is in the log already (1.4.7's wording).
    #[error("initialization failed")]
    Init,
    #[error("no Sync section")]
    NoSyncSection,
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
}

impl Replication {
    pub fn new(
        config: &Config,
        now: Instant,
        filter: Option<Filter>,
        kernel_filtering: bool,
        expectations: Option<ExpectFilter>,
    ) -> Result<Replication, SyncStartError> {
        let sync = config.sync.as_ref().ok_or(SyncStartError::NoSyncSection)?;
        let mut links = Vec::new();
        for channel in &sync.channels {
            let mut link = Link::open(channel, sync.error_queue_length as usize).map_err(|e| {
                logger::error(&format!("can't open {} channel: {e}", channel.kind.name()));
                SyncStartError::Init
            })?;
            if let Some(limit) = config.general.event_iteration_limit {
                link.set_recv_limit(limit as usize);
            }
            links.push(link);
        }
        let disable_internal_cache = match &sync.mode {
            SyncMode::Notrack {
                disable_internal_cache,
                ..
            } => *disable_internal_cache,
            SyncMode::Ftfw { .. } | SyncMode::Alarm => false,
        };
        let startup_resync = sync.mode.startup_resync();
        let seed = keys::random_u64()?;
        let auth = keys::auth_config(sync)?;
        let settings = SyncSettings {
            protocol: protocol(sync),
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
            purge_timeout: Duration::from_secs(u64::from(sync.purge_timeout)),
        };
        if startup_resync {
            logger::notice("resync requested");
        }
        Ok(Replication {
            core: SyncCore::new(now, settings),
            usable: vec![true; links.len()],
            links,
            writer: KernelWriter::open()?,
            link_check_at: now + LINK_CHECK,
            rx: Vec::new(),
            turns: turns::Turns::default(),
        })
    }

    /// The core, to read.
    pub fn core(&self) -> &SyncCore {
        &self.core
    }

    /// The core, to feed with kernel events and requests.
    pub fn core_mut(&mut self) -> &mut SyncCore {
        &mut self.core
    }

    /// The channels, in configuration order.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// `external inject:` counters.
    pub fn inject_counters(&self) -> InjectCounters {
        self.writer.inject
    }

    /// The last `-c`.
    pub fn last_commit(&self) -> Option<CommitReport> {
        self.writer.last_commit
    }

    /// The netlink port ids of the commit and inject sockets.
    pub fn own_ports(&self) -> (u32, u32) {
        self.writer.ports()
    }

    /// Resolves with the index of a channel that has something to do,
    /// asking them in turn from the one after the last that was ready.
    /// Cancel-safe (each channel's wait is).
    pub async fn ready(&self) -> usize {
        let mut waits: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = self
            .links
            .iter()
            .map(|link| Box::pin(link.readable()) as Pin<Box<dyn Future<Output = ()> + '_>>)
            .collect();
        let count = waits.len();
        std::future::poll_fn(|cx| {
            match self
                .turns
                .pick(count, |i| waits[i].as_mut().poll(cx).is_ready())
            {
                Some(i) => Poll::Ready(i),
                None => Poll::Pending,
            }
        })
        .await
    }

    pub fn handle_ready(&mut self, now: Instant, channel: usize) {
        let Some(link) = self.links.get_mut(channel) else {
            return;
        };
        let mut rx = std::mem::take(&mut self.rx);
        link.recv(&mut rx);
        for item in rx.drain(..) {
            let from = channels::canonical(item.from.ip());
            let authentic = self.core.handle_datagram(now, channel, from, &item.bytes);
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
        match keys::load_keys(sync) {
            Ok(keys) => {
                logger::notice(&format!(
                    "sync keys reloaded: key {}",
                    keys::key_id_text(&keys)
                ));
                self.core
                    .set_auth_keys(keys, sync.encrypt, sync.require_encryption);
            }
            Err(e) => logger::error(&format!("{e}; the keys in use stay")),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.core.poll_timeout(), Some(self.link_check_at)]
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
        self.core.poll_purge()
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
                        .and_then(|l| l.channel().interface.clone())
                        .unwrap_or_default();
                    logger::notice(&format!("device `{name}' becomes dedicated link"));
                }
                SyncEvent::Inject(op) => {
                    let twt = self.core.settings().tcp_window_tracking;
                    self.writer.inject(op, twt);
                }
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

    /// `-c`: writes the external cache into the kernel (see
    /// `KernelWriter::commit`); returns when done.
    pub fn commit(&mut self, now: Instant, flows: bool, expects: bool, events: Option<&CtSocket>) {
        self.core.cancel_purge();
        self.writer
            .commit(&mut self.core, now, flows, expects, events);
    }

    /// After a quiet commit's reply: its flows enter the internal cache.
    pub fn finish_commit(&mut self, now: Instant) {
        self.writer.finish_commit(&mut self.core, now);
    }

    pub fn error_queue(&self) -> (usize, usize, u64) {
        self.links
            .get(self.core.active_channel())
            .map(Link::error_queue)
            .filter(|q| q.1 > 0)
            .unwrap_or((0, DEFAULT_ERROR_QUEUE_LENGTH as usize, 0))
    }
}
