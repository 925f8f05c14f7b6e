//! conntrackd.conf: lexer, parser, typed configuration, diagnostics.
//!
//! Accepts the conntrackd 1.4.7 grammar plus the legacy spellings 1.4.7
//! rejects (mapped with warnings), collects every diagnostic instead of
//! stopping at the first, and renders them with source excerpts.

mod const_text;
mod diag;
mod finish;
mod general;
mod helper;
mod lexer;
pub mod limits;
mod model;
mod parser;
mod protocols;
pub mod reference;
mod suggest;
mod summary;
mod sync;
mod tcp_states;

use std::path::Path;

pub use diag::{Diagnostic, Severity, Span};
pub use limits::*;
pub use model::*;
pub use parser::ParseOptions;
pub use protocols::protocol_number;
pub use summary::check_summary;

/// Result of parsing a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The configuration; `None` iff at least one diagnostic is an error.
    pub config: Option<Config>,
    /// Every error, warning and notice, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Number of things written that the daemon would leave unused
    /// ([`Severity::Ignored`]).
    pub fn ignored_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Ignored)
            .count()
    }

    /// Renders all diagnostics (see [`Diagnostic::render`]).
    pub fn render_all(&self, source: &str, path: &str) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(source, path))
            .collect()
    }
}

/// Parses a configuration with the default [`ParseOptions`].
pub fn parse_str(source: &str) -> Parsed {
    parse_str_with(source, ParseOptions::default())
}

/// Parses a configuration with explicit options.
pub fn parse_str_with(source: &str, options: ParseOptions) -> Parsed {
    let mut parser = parser::Parser::new(source, options);
    parser.parse_file();
    let (config, diagnostics) = parser.finish();
    Parsed {
        config,
        diagnostics,
    }
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<(String, Parsed), std::io::Error> {
    // The C scanner is byte-oriented; invalid UTF-8 is replaced rather than
    // refused so that such files still get positioned diagnostics.
    let bytes = std::fs::read(path)?;
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let parsed = parse_str(&source);
    Ok((source, parsed))
}
