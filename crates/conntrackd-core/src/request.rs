//! The control-socket requests (docs/control-and-cli.md §2, §3): declared
//! once here, with their 1.4.7 codes. The command line builds them, the
//! socket carries their code (one native-endian 32-bit integer, plus
//! [`JSON_FLAG`] for `--json`), and the daemon dispatches on them with an
//! exhaustive `match`, so a new request is named everywhere it must be
//! handled. Parsed strictly: exactly four bytes and a known code (anything
//! else is counted as "local unknown request").

macro_rules! requests {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// A request to the running daemon.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Request {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Request {
            /// Every request, in code order.
            pub const ALL: &[Request] = &[$(Request::$variant,)*];

            /// Its code on the control socket.
            pub fn code(self) -> i32 {
                match self {
                    $(Request::$variant => $code,)*
                }
            }

            /// The request with this code, if any.
            pub fn from_code(code: i32) -> Option<Request> {
                match code {
                    $($code => Some(Request::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

requests! {
    /// `-F ct`: flush the kernel's conntrack table (what the filter accepts).
    CtFlushMaster = 0,
    /// `-R ct`: resync the internal cache with the kernel's table.
    CtResyncMaster = 1,
    /// `-i`, `-i ct`: dump the internal cache.
    CtDumpInternal = 16,
    /// `-e`, `-e ct`: dump the external cache.
    CtDumpExternal = 17,
    /// `-c ct`: commit the external cache to the kernel.
    CtCommit = 18,
    /// Flush both caches (no 1.4.7 flag sends it).
    CtFlushCache = 19,
    /// `-k`: stop the daemon.
    Kill = 20,
    /// `-s`, `-s ct`: general statistics.
    Stats = 21,
    /// `-B`: send the whole internal cache to the peers.
    SendBulk = 22,
    /// `-n`: ask the peers for theirs.
    RequestDump = 23,
    /// `-i -x`: the internal cache as XML.
    CtDumpIntXml = 24,
    /// `-e -x`: the external cache as XML.
    CtDumpExtXml = 25,
    /// `-t`: flush the kernel table after PurgeTimeout.
    ResetTimers = 26,
    /// Defined by 1.4.7, never sent, answered with nothing.
    DebugInfo = 27,
    /// `-s network`.
    StatsNetwork = 28,
    /// `-s cache`.
    StatsCache = 29,
    /// `-s runtime`.
    StatsRuntime = 30,
    /// `-s link` (`-s multicast`).
    StatsLink = 31,
    /// `-s rsqueue`.
    StatsRsqueue = 32,
    /// `-f internal`.
    CtFlushIntCache = 33,
    /// `-f external`.
    CtFlushExtCache = 34,
    /// `-s process`.
    StatsProcess = 35,
    /// `-s queue`.
    StatsQueue = 36,
    /// `-s expect`.
    ExpStats = 37,
    /// `-F expect`: flush the kernel's expectation table.
    ExpFlushMaster = 38,
    /// `-R expect`.
    ExpResyncMaster = 39,
    /// `-i expect`.
    ExpDumpInternal = 40,
    /// `-e expect`.
    ExpDumpExternal = 41,
    /// `-c expect`.
    ExpCommit = 42,
    /// `-F`: flows and expectations.
    AllFlushMaster = 43,
    /// `-R`: flows and expectations.
    AllResyncMaster = 44,
    /// `-f`: both caches, flows and expectations.
    AllFlushCache = 45,
    /// `-c`: flows and expectations.
    AllCommit = 46,
    /// `-i expect -x`.
    ExpDumpIntXml = 47,
    /// `-e expect -x`.
    ExpDumpExtXml = 48,
    /// `--synced` (ours, docs/readiness.md): does the node hold its peers'
    /// state?
    Synced = 256,
}

impl Request {
    /// Not in 1.4.7's table: our extensions.
    pub fn is_extension(self) -> bool {
        self.code() >= 256
    }
}

/// Added to a request's code to ask for the reply as JSON (our extension;
/// 1.4.7 counts such a request as unknown and does not answer it).
pub const JSON_FLAG: i32 = 0x1_0000;

/// A request as sent: what, and whether the reply is JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub request: Request,
    pub json: bool,
}

impl Asked {
    pub fn plain(request: Request) -> Asked {
        Asked {
            request,
            json: false,
        }
    }

    /// The 32-bit code sent on the socket.
    pub fn code(self) -> i32 {
        self.request.code() | if self.json { JSON_FLAG } else { 0 }
    }

    /// The four bytes sent on the socket.
    pub fn to_bytes(self) -> [u8; 4] {
        self.code().to_ne_bytes()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes, not 4")]
    Length(usize),
    #[error("unknown request code {0}")]
    Unknown(i32),
}

/// Reads a request from exactly the bytes the client sent.
pub fn parse_request(bytes: &[u8]) -> Result<Asked, RequestError> {
    let raw: [u8; 4] = bytes
        .try_into()
        .map_err(|_| RequestError::Length(bytes.len()))?;
    let code = i32::from_ne_bytes(raw);
    let json = code & JSON_FLAG != 0;
    Request::from_code(code & !JSON_FLAG)
        .map(|request| Asked { request, json })
        .ok_or(RequestError::Unknown(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1.4.7 table (docs/control-and-cli.md §2).
    const C_CODES: &[i32] = &[
        0, 1, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36,
        37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    ];

    #[test]
    fn the_table_is_1_4_7_s_plus_our_extensions() {
        let ours: Vec<i32> = Request::ALL
            .iter()
            .filter(|r| !r.is_extension())
            .map(|r| r.code())
            .collect();
        assert_eq!(ours, C_CODES);
        for r in Request::ALL {
            assert_eq!(Request::from_code(r.code()), Some(*r));
        }
    }

    #[test]
    fn only_four_byte_known_codes_pass() {
        assert_eq!(
            parse_request(&21i32.to_ne_bytes()),
            Ok(Asked::plain(Request::Stats))
        );
        assert_eq!(
            parse_request(&99i32.to_ne_bytes()),
            Err(RequestError::Unknown(99))
        );
        assert_eq!(parse_request(&[1, 2, 3]), Err(RequestError::Length(3)));
        assert_eq!(parse_request(&[0; 5]), Err(RequestError::Length(5)));
        for r in Request::ALL {
            let plain = Asked::plain(*r);
            assert_eq!(parse_request(&plain.to_bytes()), Ok(plain));
            let json = Asked {
                request: *r,
                json: true,
            };
            assert_eq!(parse_request(&json.to_bytes()), Ok(json));
        }
        let unknown = 99 | JSON_FLAG;
        assert_eq!(
            parse_request(&unknown.to_ne_bytes()),
            Err(RequestError::Unknown(unknown))
        );
    }
}
