//! conntrackd.conf: lexer, parser, typed configuration, diagnostics.
