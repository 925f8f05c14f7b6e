//! The keys and the session of `Authentication` (docs/authentication.md).

use std::path::{Path, PathBuf};

use conntrackd_config::SyncSection;
use conntrackd_core::sync::auth::{AuthConfig, Key, KeyRing, MIN_KEY_LEN};

use crate::logger;

/// Why the keys or the session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("can't read the OS random generator: {0}")]
    Random(rustix::io::Errno),
    #[error("no KeyFile")]
    NoKeyFile,
    #[error("can't read `{}': {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file `{}' is too short (at least {MIN_KEY_LEN} bytes)", path.display())]
    TooShort { path: PathBuf },
}

/// The authentication layer's set-up, from a new session.
pub(super) fn auth_config(sync: &SyncSection) -> Result<Option<AuthConfig>, KeyError> {
    if sync.key_file.is_none() {
        return Ok(None);
    }
    let keys = load_keys(sync)?;
    // From the OS random generator: sessions (and with them the nonces)
    // never repeat across nodes, restarts or clones.
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
    Ok(Some(AuthConfig {
        keys,
        encrypt: sync.encrypt,
        require_encryption: sync.require_encryption,
        session,
    }))
}

/// 64 bits from the OS random generator.
pub(super) fn random_u64() -> Result<u64, KeyError> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = bytes.get_mut(filled..).unwrap_or_default();
        match rustix::rand::getrandom(rest, rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(KeyError::Random(e)),
        }
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// The keys `Authentication` names: `KeyFile` to send (and accept), and
/// `AcceptKeyFile` to accept too.
pub(super) fn load_keys(sync: &SyncSection) -> Result<KeyRing, KeyError> {
    let read = |path: &Path| -> Result<Key, KeyError> {
        let secret = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Key::new(&secret).ok_or_else(|| KeyError::TooShort {
            path: path.to_owned(),
        })
    };
    let send = read(sync.key_file.as_deref().ok_or(KeyError::NoKeyFile)?)?;
    let accept = sync.accept_key_file.as_deref().map(read).transpose()?;
    Ok(KeyRing::new(send, accept.into_iter().collect()))
}

/// `1a2b3c4d` (and `+ 5e6f7a8b accepted`): key ids, never key material.
pub(super) fn key_id_text(keys: &KeyRing) -> String {
    let hex = |id: [u8; 4]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut text = hex(keys.sending().id());
    for key in keys.accepted() {
        text.push_str(&format!(" (also accepting {})", hex(key.id())));
    }
    text
}
