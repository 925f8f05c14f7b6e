//! `-i` without an internal cache lists the kernel's conntrack table, as
//! `conntrack -L` shows it. A table of a million flows takes seconds to
//! dump and hundreds of megabytes as text, so the dump runs on a thread of
//! its own, on a netlink socket of its own, and reaches the client in
//! bounded parts: the main loop never waits for it, and a slow client
//! holds up only its own dump (docs/control-and-cli.md §3).

use conntrack_text::PlainOptions;
use conntrackd_core::filter::Filter;
use ctnl::CtSocket;
use tokio::sync::mpsc;

use crate::control::reply::ReplySource;
use crate::logger;

/// A part is sent once it holds this much text.
const PART_BYTES: usize = 64 * 1024;

/// Parts rendered ahead of the client: memory stays within a few parts
/// per dump, whatever the size of the table.
const PARTS_AHEAD: usize = 2;

/// A kernel dump asked for by a client, not started yet.
#[derive(Debug)]
pub struct KernelDump {
    /// The configuration's filter: what the daemon would not track is not
    /// listed either.
    pub filter: Option<Filter>,
}

/// What the dump thread hands over: text, or why it stopped.
type Part = Result<String, String>;

/// The reply of a kernel dump, part by part as the thread renders them.
#[derive(Debug)]
pub struct KernelDumpFeed {
    parts: mpsc::Receiver<Part>,
}

impl KernelDump {
    /// Starts the dump thread. If it cannot start, the reply is empty and
    /// the reason is logged.
    pub fn start(self) -> KernelDumpFeed {
        let (tx, parts) = mpsc::channel(PARTS_AHEAD);
        let filter = self.filter;
        if let Err(e) = std::thread::Builder::new()
            .name("kernel-dump".into())
            .spawn(move || dump(filter.as_ref(), &tx))
        {
            logger::error(&format!("can't dump the kernel conntrack table: {e}"));
        }
        KernelDumpFeed { parts }
    }
}

/// The dump thread: renders accepted flows into parts and sends each as
/// it fills. A client that went away closes the channel; the rest of the
/// dump is then read and dropped, which ends it cleanly.
fn dump(filter: Option<&Filter>, tx: &mpsc::Sender<Part>) {
    // The daemon runs at SCHED_RR 99 by default and this thread inherits
    // it: a dump of millions of flows, or several at once, would take
    // whole cores from everything else (softirqs included). It is a
    // client's errand, not the daemon's. Failing to drop the policy is
    // harmless when there was none to drop.
    let _ = oscalls::set_thread_time_sharing();
    let mut socket = match CtSocket::open(0, false) {
        Ok(socket) => socket,
        Err(e) => {
            let _ = tx.blocking_send(Err(format!("can't open a netlink socket: {e}")));
            return;
        }
    };
    let mut text = String::new();
    let mut gone = false;
    let done = socket.dump_conntrack_each(|ct| {
        if gone || filter.is_some_and(|f| !f.accepts(&ct)) {
            return;
        }
        conntrack_text::write_plain(
            &mut text,
            &ct,
            PlainOptions {
                show_timeout: true,
                show_use: true,
            },
        );
        text.push('\n');
        if text.len() >= PART_BYTES {
            gone = tx.blocking_send(Ok(std::mem::take(&mut text))).is_err();
        }
    });
    if gone {
        return;
    }
    if !text.is_empty() {
        let _ = tx.blocking_send(Ok(text));
    }
    if let Err(e) = done {
        let _ = tx.blocking_send(Err(format!("can't dump the kernel conntrack table: {e}")));
    }
}

impl ReplySource for KernelDumpFeed {
    async fn next_part(&mut self) -> Option<String> {
        match self.parts.recv().await? {
            Ok(text) => Some(text),
            Err(why) => {
                // Logged here, on the daemon's thread, where the log lives.
                logger::error(&why);
                None
            }
        }
    }
}
