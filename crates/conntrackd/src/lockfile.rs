//! The daemon's lock file.
//!
//! Same path semantics as conntrackd 1.4.7 (created exclusively, mode 0600,
//! removed on orderly shutdown, a second daemon exits 1 with the same
//! message), plus what the C daemon lacks: the file holds our PID and an
//! `flock`, so a lock left behind by a crash or `kill -9` is recognised as
//! stale and taken over instead of blocking every restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lockfile `{}' exists, perhaps conntrackd already running?", .path.display())]
    Held { path: PathBuf, pid: Option<u32> },
    #[error("can't create lockfile `{}': {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock; dropping it does not remove the file, [`LockFile::release`] does.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    // Keeps the flock for the lifetime of the daemon.
    _file: File,
}

/// What happened when the lock was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquired {
    Fresh,
    /// A stale lock was found (its owner is gone) and taken over.
    TookOverStale {
        previous_pid: Option<u32>,
    },
}

impl LockFile {
    /// Takes the lock at `path`.
    pub fn acquire(path: &Path) -> Result<(LockFile, Acquired), LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => {
                let file = lock_and_stamp(file).map_err(io_err)?;
                Ok((
                    LockFile {
                        path: path.to_path_buf(),
                        _file: file,
                    },
                    Acquired::Fresh,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io_err)?;
                let previous_pid = read_pid(&mut file);
                if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        pid: previous_pid,
                    });
                }
                // A C conntrackd never flocks: an empty file whose owner we
                // cannot see may belong to a running C daemon. Only a file
                // with a PID of a process that no longer exists is stale.
                let stale = previous_pid.is_some_and(|pid| !process_exists(pid));
                if !stale {
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        pid: previous_pid,
                    });
                }
                let file = stamp(file).map_err(io_err)?;
                Ok((
                    LockFile {
                        path: path.to_path_buf(),
                        _file: file,
                    },
                    Acquired::TookOverStale { previous_pid },
                ))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Removes the lock file (orderly shutdown).
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_and_stamp(file: File) -> std::io::Result<File> {
    flock(&file, FlockOperation::NonBlockingLockExclusive)?;
    stamp(file)
}

fn stamp(mut file: File) -> std::io::Result<File> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// True if the process runs; a zombie (killed, not yet reaped) does not.
fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_with_the_c_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ct.lock");
        let (lock, how) = LockFile::acquire(&path).expect("first");
        assert_eq!(how, Acquired::Fresh);
        let err = LockFile::acquire(&path).expect_err("second must fail");
        assert_eq!(
            err.to_string(),
            format!(
                "lockfile `{}' exists, perhaps conntrackd already running?",
                path.display()
            )
        );
        lock.release();
        assert!(!path.exists());
    }

    #[test]
    fn stale_lock_with_dead_pid_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ct.lock");
        // PIDs above pid_max (4194304) never exist.
        std::fs::write(&path, "4194999\n").expect("write");
        let (lock, how) = LockFile::acquire(&path).expect("stale lock taken over");
        assert_eq!(
            how,
            Acquired::TookOverStale {
                previous_pid: Some(4194999)
            }
        );
        let pid = std::fs::read_to_string(&path).expect("read");
        assert_eq!(pid.trim(), std::process::id().to_string());
        lock.release();
    }

    #[test]
    fn empty_lock_of_a_c_daemon_is_respected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ct.lock");
        std::fs::write(&path, "").expect("write");
        assert!(matches!(
            LockFile::acquire(&path),
            Err(LockError::Held { pid: None, .. })
        ));
    }
}
