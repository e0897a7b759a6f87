//! Every committed corpus input of every fuzz target, replayed through the
//! target's own body (`spanwatch_fuzz::<target>::fuzz_one`) as an ordinary test on
//! stable: a regression of a parser or of an invariant the targets assert
//! fails here, in CI, without cargo-fuzz. Inputs found crashing by a fuzz run
//! are added to the target's corpus directory once fixed, so they are
//! replayed here too.

use std::path::Path;

/// A target's body: one fuzz input.
type Body = fn(&[u8]);

/// (target, its body).
const TARGETS: &[(&str, Body)] = &[
    ("coap", spanwatch_fuzz::coap::fuzz_one),
    ("dhcp", spanwatch_fuzz::dhcp::fuzz_one),
    ("http", spanwatch_fuzz::http::fuzz_one),
    ("mqtt", spanwatch_fuzz::mqtt::fuzz_one),
    ("telnet", spanwatch_fuzz::telnet::fuzz_one),
];

/// Fewest inputs a target's committed corpus holds (each has some hundreds).
const MIN_INPUTS: usize = 50;

#[test]
fn every_corpus_input_runs_through_its_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, run) in TARGETS {
        let dir = corpus.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(
            inputs.len() >= MIN_INPUTS,
            "{}: only {} inputs",
            dir.display(),
            inputs.len()
        );
        for input in &inputs {
            let data = std::fs::read(input).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", input.display());
        }
    }
}

#[test]
fn every_target_has_a_committed_corpus_and_nothing_else_does() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut dirs: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let targets: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    assert_eq!(dirs, targets);
}
