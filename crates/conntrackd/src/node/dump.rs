//! Cache dumps (`-i`, `-e`, `-x`, `--json` and the expectation dumps),
//! rendered a bounded chunk at a time as the client reads them, so that
//! a large table is neither rendered in one go inside the main loop nor
//! held in memory once per client.
//!
//! Consistency: 1.4.7 forks and its child writes a snapshot. We walk the
//! live cache instead, which copies nothing: an object present for the
//! whole dump is listed exactly once, one created or destroyed meanwhile
//! may or may not be, and each line is one object as it was when its
//! chunk was rendered (a chunk ends at the end of a line). Flow caches
//! are walked by position, which an object keeps until it is removed
//! (`Cache::entry_at`); the expectation cache, a hash map, by the keys it
//! held when the dump started.

use std::fmt::Write;
use std::time::Instant;

use conntrack_model::ExpectKey;
use conntrack_text::PlainOptions;
use conntrackd_core::cache::{Cache, Entry};
use conntrackd_core::expect_cache::{ExpectCache, ExpectEntry};
use conntrackd_core::sync::SyncCore;

use conntrackd_core::request::Request;

use super::{Engine, Node};
use crate::json::ArrayWriter;

/// A chunk ends once it holds this much text...
const CHUNK_BYTES: usize = 64 * 1024;
/// ...or once this many positions were looked at (holes included).
const CHUNK_POSITIONS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    InternalFlows,
    ExternalFlows,
    InternalExpectations,
    ExternalExpectations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Plain,
    Xml,
    Json,
}

/// Where a dump stands; handed back and forth between the main loop,
/// which renders the next chunk, and the task writing the reply.
#[derive(Debug)]
pub struct DumpCursor {
    listed: Listed,
    format: Format,
    /// The next position (flows) or index into `keys` (expectations).
    next: usize,
    keys: Vec<ExpectKey>,
    json: ArrayWriter,
    finished: bool,
}

impl DumpCursor {
    fn new(listed: Listed, format: Format) -> DumpCursor {
        DumpCursor {
            listed,
            format,
            next: 0,
            keys: Vec::new(),
            json: ArrayWriter::default(),
            finished: false,
        }
    }

    /// Everything was rendered.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn finish(&mut self, out: &mut String) {
        if self.format == Format::Json {
            self.json.finish(out);
        }
        self.keys = Vec::new();
        self.finished = true;
    }
}

impl Node {
    /// The dump a request asks for, if it is one this node lists from a
    /// cache; other requests (a kernel dump without an internal cache, an
    /// empty `--json` array) are answered as text.
    pub(super) fn dump_request(&self, request: Request, json: bool) -> Option<DumpCursor> {
        let sync = self.core().map(SyncCore::settings);
        let internal = match self.engine {
            Engine::Idle => false,
            Engine::Stats(_) => true,
            Engine::Sync(_) => !self.internal_disabled(),
        };
        let external = sync.is_some_and(|s| !s.disable_external_cache);
        let expectations = self.expect().is_some();
        let xml = matches!(
            request,
            Request::CtDumpIntXml
                | Request::CtDumpExtXml
                | Request::ExpDumpIntXml
                | Request::ExpDumpExtXml
        );
        let format = match (json, xml) {
            (true, _) => Format::Json,
            (false, true) => Format::Xml,
            (false, false) => Format::Plain,
        };
        let listed = match request {
            Request::CtDumpInternal | Request::CtDumpIntXml if internal => Listed::InternalFlows,
            Request::CtDumpExternal | Request::CtDumpExtXml if external => Listed::ExternalFlows,
            Request::ExpDumpInternal | Request::ExpDumpIntXml if expectations => {
                Listed::InternalExpectations
            }
            Request::ExpDumpExternal | Request::ExpDumpExtXml if expectations => {
                Listed::ExternalExpectations
            }
            _ => return None,
        };
        let mut cursor = DumpCursor::new(listed, format);
        if let Some(cache) = self.expectation_cache(listed) {
            cursor.keys = cache.keys().cloned().collect();
        }
        Some(cursor)
    }

    /// The next chunk of a dump: up to [`CHUNK_BYTES`] of text or
    /// [`CHUNK_POSITIONS`] positions looked at, whichever comes first
    /// (possibly empty when they were holes). Empty once finished.
    pub fn dump_chunk(&self, cursor: &mut DumpCursor, now: Instant) -> String {
        let mut out = String::new();
        if cursor.finished {
            return out;
        }
        let end = match self.expectation_cache(cursor.listed) {
            Some(cache) => {
                let end = cursor.keys.len().min(cursor.next + CHUNK_POSITIONS);
                while cursor.next < end && out.len() < CHUNK_BYTES {
                    if let Some(entry) = cursor.keys.get(cursor.next).and_then(|k| cache.get(k)) {
                        expectation_line(&mut out, entry, cursor, now);
                    }
                    cursor.next += 1;
                }
                cursor.keys.len()
            }
            None => match self.flow_cache(cursor.listed) {
                Some((cache, expiry)) => {
                    let end = cache.positions().min(cursor.next + CHUNK_POSITIONS);
                    while cursor.next < end && out.len() < CHUNK_BYTES {
                        if let Some(entry) = cache.entry_at(cursor.next) {
                            flow_line(&mut out, cache, entry, expiry, cursor, now);
                        }
                        cursor.next += 1;
                    }
                    cache.positions()
                }
                None => 0,
            },
        };
        if cursor.next >= end {
            cursor.finish(&mut out);
        }
        out
    }

    /// A flow cache, with the sync core when its objects have an expiry
    /// (the external cache: `[expires in]` in ALARM mode).
    fn flow_cache(&self, listed: Listed) -> Option<(&Cache, Option<&SyncCore>)> {
        match listed {
            Listed::InternalFlows => self.local().map(|local| (local.cache(), None)),
            Listed::ExternalFlows => self.core().map(|core| (core.external(), Some(core))),
            Listed::InternalExpectations | Listed::ExternalExpectations => None,
        }
    }

    fn expectation_cache(&self, listed: Listed) -> Option<&ExpectCache> {
        let expectations = self.expect()?;
        match listed {
            Listed::InternalExpectations => Some(&expectations.internal),
            Listed::ExternalExpectations => Some(&expectations.external),
            Listed::InternalFlows | Listed::ExternalFlows => None,
        }
    }
}

/// One flow as `-i`/`-e`, `-x` or `--json` list it. conntrackd strips
/// the timeout and use count before printing.
fn flow_line(
    out: &mut String,
    cache: &Cache,
    entry: &Entry,
    expiry: Option<&SyncCore>,
    cursor: &mut DumpCursor,
    now: Instant,
) {
    let mut ct = entry.ct().into_owned();
    ct.timeout = None;
    ct.use_count = None;
    let expires_in = || {
        expiry
            .zip(entry.key())
            .and_then(|(core, key)| core.expires_in(&key, now))
            .map(|left| left.as_secs())
    };
    let active = cache.age(entry, now).as_secs();
    match cursor.format {
        Format::Plain => {
            conntrack_text::write_plain(out, &ct, PlainOptions::default());
            if let Some(left) = expires_in() {
                let _ = write!(out, " [expires in {left}s]");
            }
            let _ = writeln!(out, " [active since {active}s]");
        }
        Format::Xml => {
            out.push_str(&conntrack_text::xml(&ct));
            out.push('\n');
        }
        Format::Json => {
            let text = conntrack_text::plain(&ct, PlainOptions::default());
            let value = crate::json::flow(&ct, &text, active, expires_in());
            cursor.json.element(out, &value);
        }
    }
}

/// One expectation as `-i expect`, `-x` or `--json` list it.
fn expectation_line(out: &mut String, entry: &ExpectEntry, cursor: &mut DumpCursor, now: Instant) {
    match cursor.format {
        Format::Plain => {
            out.push_str(&conntrack_text::expect_plain(&entry.exp, false));
            let _ = writeln!(
                out,
                " [active since {}s]",
                now.saturating_duration_since(entry.created).as_secs()
            );
        }
        Format::Xml => {
            out.push_str(&conntrack_text::expect_xml(&entry.exp));
            out.push('\n');
        }
        Format::Json => {
            let text = conntrack_text::expect_plain(&entry.exp, false);
            let value = crate::json::expectation(&entry.exp, &text);
            cursor.json.element(out, &value);
        }
    }
}
