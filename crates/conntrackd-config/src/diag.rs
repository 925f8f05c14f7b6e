//! Diagnostics: severity, source position, rendering.

use std::fmt::Write as _;

/// Byte range into the configuration source.
pub type Span = std::ops::Range<usize>;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is rejected.
    Error,
    /// Something the operator wrote is left unused (an invalid value, a
    /// key not honoured): the daemon starts and logs it as a warning, as
    /// 1.4.7 does, but `--check` counts it as an error (exit status 2).
    Ignored,
    /// A legacy spelling mapped, or a clause 1.4.7 itself ignores; the
    /// configuration is used as meant.
    Warning,
    /// Informational.
    Notice,
}

impl Severity {
    /// Lower-case word used by the rendered form (`error`, `warning`,
    /// `notice`); [`Severity::Ignored`] is rendered for `--check`, hence
    /// as an error.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Error | Severity::Ignored => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }

    /// Level word of the C daemon's logger prefix (`ERROR`, `warning`, `notice`).
    pub fn log_level(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Warning | Severity::Ignored => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or notice.
    pub severity: Severity,
    /// Byte range of the offending text.
    pub span: Span,
    /// 1-based line of `span.start`; 0 for a diagnostic about the whole
    /// file (see [`Diagnostic::location`]).
    pub line: usize,
    /// 1-based column (in characters) of `span.start`; 0 with line 0.
    pub column: usize,
    /// Message, using the 1.4.7 text where one exists.
    pub message: String,
    /// Optional hint on how to fix it.
    pub help: Option<String>,
    /// For syntax errors: the offending token text (empty at end of file),
    /// used by [`Diagnostic::c_syntax_error`].
    pub symbol: Option<String>,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `PATH:LINE:COLUMN`, or `PATH` alone for a diagnostic about the
    /// whole file.
    pub fn location(&self, path: &str) -> String {
        if self.line == 0 {
            path.to_owned()
        } else {
            format!("{path}:{}:{}", self.line, self.column)
        }
    }

    /// The C daemon's one-line syntax error text
    /// (`parsing config file in line (L), symbol 'TEXT': syntax error`),
    /// or `None` if this diagnostic is not a syntax error.
    pub fn c_syntax_error(&self) -> Option<String> {
        self.symbol.as_ref().map(|symbol| {
            format!(
                "parsing config file in line ({}), symbol '{}': syntax error",
                self.line, symbol
            )
        })
    }

    /// Message as the C daemon logs it: the syntax error text for syntax
    /// errors, the plain message otherwise (without the log prefix).
    pub fn c_message(&self) -> String {
        self.c_syntax_error()
            .unwrap_or_else(|| self.message.clone())
    }

    /// Renders `PATH:LINE:COLUMN: error: message`, the source line with a
    /// caret underline below the span, then `help: …` if any.
    pub fn render(&self, source: &str, path: &str) -> String {
        let mut out = format!(
            "{}: {}: {}\n",
            self.location(path),
            self.severity.word(),
            self.message
        );
        let excerpt = if self.line == 0 {
            None
        } else {
            line_at(source, self.span.start)
        };
        if let Some((line_text, line_start)) = excerpt {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let shown = line_text.trim_end_matches('\r');
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{gutter} | {}", shown.replace('\t', " "));
            let start_col = self.span.start.saturating_sub(line_start);
            let prefix_chars = shown
                .get(..start_col.min(shown.len()))
                .map_or(0, |p| p.chars().count());
            let end = self
                .span
                .end
                .min(line_start + shown.len())
                .max(self.span.start);
            let width = source
                .get(self.span.start..end)
                .map_or(1, |s| s.chars().count())
                .max(1);
            let _ = writeln!(
                out,
                "{pad} | {}{}",
                " ".repeat(prefix_chars),
                "^".repeat(width)
            );
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        if self.severity == Severity::Ignored {
            let _ = writeln!(
                out,
                "  = note: the daemon starts without it, logging a warning; `--check' exits 2"
            );
        }
        out
    }
}

/// Returns the line containing byte `offset` and the line's start offset.
/// At end of input this is the last (possibly empty) line.
fn line_at(source: &str, offset: usize) -> Option<(&str, usize)> {
    let offset = offset.min(source.len());
    if !source.is_char_boundary(offset) {
        return None;
    }
    let start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = source[offset..]
        .find('\n')
        .map_or(source.len(), |i| offset + i);
    Some((&source[start..end], start))
}

/// Computes 1-based (line, column) of a byte offset; column counts characters.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in source.bytes().enumerate().take(offset) {
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let column = source
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}
