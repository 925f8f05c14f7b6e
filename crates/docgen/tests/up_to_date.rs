//! The committed manual pages and completions must be what the reference
//! tables render today (run `cargo run -p docgen` after changing them).

use std::path::PathBuf;

#[test]
fn generated_files_are_up_to_date() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stale = Vec::new();
    for (path, text) in docgen::outputs() {
        match std::fs::read_to_string(root.join(path)) {
            Ok(committed) if committed == text => {}
            Ok(_) => stale.push(format!("{path} differs")),
            Err(e) => stale.push(format!("{path}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nrun `cargo run -p docgen` to regenerate",
        stale.join("\n")
    );
}
