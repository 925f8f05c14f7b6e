//! The expectation cache (`Options { ExpectationSync … }`).

use crate::FastMap;
use std::time::Instant;

use conntrack_model::{Expect, ExpectKey};

use crate::cache::{CacheCounters, CacheError};

/// One cached expectation.
#[derive(Debug, Clone)]
pub struct ExpectEntry {
    pub exp: Expect,
    pub created: Instant,
    /// Updated since creation (sent as EXP_UPD rather than EXP_NEW).
    pub alive: bool,
}

/// Which expectations are synchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectFilter {
    All,
    /// Helper-name prefixes, compared case-insensitively.
    Helpers(Vec<String>),
}

impl ExpectFilter {
    pub fn accepts(&self, exp: &Expect) -> bool {
        match self {
            ExpectFilter::All => true,
            ExpectFilter::Helpers(names) => exp.helper.as_ref().is_some_and(|h| {
                let h = h.to_ascii_lowercase();
                names.iter().any(|n| h.starts_with(&n.to_ascii_lowercase()))
            }),
        }
    }
}

/// Expectations keyed by their expected tuple.
#[derive(Debug)]
pub struct ExpectCache {
    limit: usize,
    entries: FastMap<ExpectKey, ExpectEntry>,
    pub counters: CacheCounters,
}

impl ExpectCache {
    pub fn new(limit: usize) -> Self {
        ExpectCache {
            limit,
            entries: FastMap::default(),
            counters: CacheCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or merges.
    pub fn upsert(&mut self, now: Instant, exp: Expect) -> Result<(), CacheError> {
        let key = exp.key().ok_or(CacheError::NoKey)?;
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.exp.merge(&exp);
            entry.alive = true;
            self.counters.updated += 1;
            return Ok(());
        }
        if self.entries.len() >= self.limit {
            self.counters.create_failed += 1;
            self.counters.no_space += 1;
            return Err(CacheError::Full);
        }
        self.entries.insert(
            key,
            ExpectEntry {
                exp,
                created: now,
                alive: false,
            },
        );
        self.counters.created += 1;
        Ok(())
    }

    pub fn remove(&mut self, exp: &Expect) -> Option<ExpectEntry> {
        let entry = self.entries.remove(&exp.key()?)?;
        self.counters.destroyed += 1;
        Some(entry)
    }

    /// Replaces any expectation with the same key by a fresh one.
    pub fn insert_new(&mut self, now: Instant, exp: Expect) -> Result<(), CacheError> {
        let key = exp.key().ok_or(CacheError::NoKey)?;
        if self.entries.remove(&key).is_some() {
            self.counters.destroyed += 1;
        }
        self.upsert(now, exp)
    }

    pub fn get(&self, key: &ExpectKey) -> Option<&ExpectEntry> {
        self.entries.get(key)
    }

    pub fn remove_key(&mut self, key: &ExpectKey) -> Option<ExpectEntry> {
        let entry = self.entries.remove(key)?;
        self.counters.destroyed += 1;
        Some(entry)
    }

    pub fn flush(&mut self) {
        self.counters.destroyed += self.entries.len() as u64;
        self.entries.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExpectEntry> {
        self.entries.values()
    }

    /// The keys of every cached expectation, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &ExpectKey> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::Tuple;

    fn exp(helper: &str) -> Expect {
        Expect {
            tuple: Some(
                Tuple::new(
                    "10.0.0.1".parse().expect("ip"),
                    "10.0.0.2".parse().expect("ip"),
                    6,
                )
                .with_ports(0, 10000),
            ),
            helper: Some(helper.into()),
            ..Expect::default()
        }
    }

    #[test]
    fn helper_prefixes_match_case_insensitively() {
        let f = ExpectFilter::Helpers(vec!["sip".into(), "FTP".into()]);
        assert!(f.accepts(&exp("sip-5060")));
        assert!(f.accepts(&exp("ftp")));
        assert!(!f.accepts(&exp("tftp")));
        assert!(!f.accepts(&Expect::default()));
    }

    #[test]
    fn upsert_remove_and_limit() {
        let now = Instant::now();
        let mut c = ExpectCache::new(1);
        c.upsert(now, exp("ftp")).expect("insert");
        c.upsert(now, exp("ftp")).expect("merge");
        assert_eq!((c.len(), c.counters.created, c.counters.updated), (1, 1, 1));
        let mut other = exp("ftp");
        other.tuple = other.tuple.map(|t| t.with_ports(0, 10001));
        assert_eq!(c.upsert(now, other), Err(CacheError::Full));
        assert!(c.remove(&exp("ftp")).is_some());
        assert!(c.is_empty());
    }
}
