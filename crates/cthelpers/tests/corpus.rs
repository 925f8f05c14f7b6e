//! Every fuzz corpus of the helper targets (fuzz/corpus/helper_*),
//! replayed through the targets' bodies (cthelpers::fuzzing).

use cthelpers::HelperKind;

#[test]
fn every_helper_corpus_replays() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus");
    let mut replayed = 0;
    for kind in HelperKind::ALL {
        let dir = format!("{root}/helper_{}", kind.name());
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            cthelpers::fuzzing::helper_flow(kind, &data);
            files += 1;
        }
        assert!(files > 0, "{dir} has no seed");
        replayed += files;
    }
    assert!(replayed >= 10);
}

/// The seeds written by hand each make their helper expect something
/// (a seed that no longer does would seed the fuzzer with dead input).
#[test]
fn the_hand_written_seeds_reach_an_expectation() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus");
    for kind in HelperKind::ALL {
        let dir = format!("{root}/helper_{}", kind.name());
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                continue;
            }
            let created =
                cthelpers::fuzzing::helper_flow(kind, &std::fs::read(&path).expect("read"));
            assert!(!created.is_empty(), "{} expects nothing", path.display());
        }
    }
}
