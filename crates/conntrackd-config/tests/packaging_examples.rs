//! The configuration files shipped in the Debian package must load without
//! a single diagnostic (interfaces are not checked: they are the target
//! host's).

use std::path::PathBuf;

use conntrackd_config::{ParseOptions, parse_str_with};

fn check(relative: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let parsed = parse_str_with(
        &source,
        ParseOptions {
            check_interfaces: false,
        },
    );
    assert!(parsed.config.is_some(), "{relative} is rejected");
    assert!(
        parsed.diagnostics.is_empty(),
        "{}",
        parsed.render_all(&source, relative)
    );
}

#[test]
fn shipped_ftfw_example_loads_cleanly() {
    check("packaging/examples/ftfw/conntrackd.conf");
}

#[test]
fn shipped_default_config_loads_cleanly() {
    check("packaging/conntrackd.conf");
}
