//! `cargo run -p docgen` regenerates the manual pages and completions;
//! `cargo run -p docgen -- --check` only reports stale files.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: docgen [--check] (unknown argument `{other}')");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stale = 0;
    for (path, text) in docgen::outputs() {
        let file = root.join(path);
        let current = std::fs::read_to_string(&file).ok();
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            eprintln!("{path} is stale");
            stale += 1;
            continue;
        }
        if let Some(dir) = file.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("{}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(&file, text) {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {path}");
    }
    if stale > 0 {
        eprintln!("run `cargo run -p docgen` to regenerate");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
