//! Fuzzing on the stable toolchain: every parser that reads what others send is fed its committed
//! corpus (`tests/fuzz/<target>/`), then mutations of it (bit flips, byte runs inserted, cut
//! and repeated, splices of two inputs, tokens of the format) for a bounded time each, and must
//! neither panic nor answer a 500. The properties are in `tests/fuzz/properties.rs`, shared with
//! the coverage-guided cargo-fuzz (libFuzzer) targets in `fuzz/`, which `scripts/fuzz` runs with
//! `FUZZ_LIBFUZZER=1` (on the stable toolchain, with `RUSTC_BOOTSTRAP=1`); this runner needs no
//! more than `cargo test`.
//!
//! `FUZZ_SECONDS` (default 3) is the time per target, `FUZZ_SEED` the seed (default: the clock;
//! printed, so a failure can be replayed). A failing input is written to
//! `target/fuzz-failures/<target>-<hash>`; copy it into the target's corpus to keep it as a
//! regression case. `scripts/fuzz` runs each target longer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// The properties, shared with the cargo-fuzz targets (`fuzz/fuzz_targets/`).
#[path = "fuzz/properties.rs"]
mod properties;

/// A small, fast, seedable generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens of the formats the targets read, spliced into inputs.
const TOKENS: [&[u8]; 24] = [
    b"00-",
    b"-01",
    b"ff",
    b"=",
    b",",
    b";",
    b"%",
    b"%zz",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"/",
    b"~1",
    b"*",
    b"\\u0000",
    b"\xff\xfe",
    b"\x00",
    b"\n[health]\n",
    b"key_rules = [",
    b"&",
    b"key=",
    b"depth=",
];

/// One mutation of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let byte = rng.next() as u8;
                out.splice(at..at, std::iter::repeat_n(byte, 1 + rng.below(8)));
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            5 if !out.is_empty() && out.len() < 1 << 16 => {
                // Repeat a slice: long inputs, deep nesting.
                let end = (at + 1 + rng.below(8)).min(out.len());
                let slice = out[at.min(end.saturating_sub(1))..end].to_vec();
                for _ in 0..rng.below(64) {
                    out.splice(at..at, slice.iter().copied());
                }
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "corpus {} is empty", dir.display());
    inputs
}

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Writes `input` where a failure of `target` is kept, and says where.
fn keep_failure(target: &str, input: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut hasher);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-{:016x}", hasher.finish()));
    std::fs::write(&path, input).unwrap();
    path
}

/// Runs `check` on the corpus, then on mutations until the budget is spent; a panic or a
/// `false` fails the test with the input kept.
fn fuzz(target: &str, check: impl FnMut(&[u8]) -> bool) {
    fuzz_from(target, Vec::new(), check)
}

/// [`fuzz`] with `extra` inputs beside the committed corpus (binary seeds built here).
fn fuzz_from(target: &str, extra: Vec<Vec<u8>>, mut check: impl FnMut(&[u8]) -> bool) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut pool = corpus(target);
    pool.extend(extra);
    let started = Instant::now();
    let mut executions = 0u64;
    let mut run = |input: &[u8], executions: &mut u64| {
        *executions += 1;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        if !matches!(outcome, Ok(true)) {
            let kept = keep_failure(target, input);
            panic!(
                "{target}: {} on input kept at {} (FUZZ_SEED={seed})",
                if outcome.is_err() {
                    "panic"
                } else {
                    "a wrong answer"
                },
                kept.display()
            );
        }
    };
    for input in pool.clone() {
        run(&input, &mut executions);
    }
    while started.elapsed() < budget() {
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let input = mutate(&mut rng, &pool[a], &pool[b]);
        run(&input, &mut executions);
        // Keep some mutants as parents: walks further from the seeds.
        if rng.below(16) == 0 && pool.len() < 4096 {
            pool.push(input);
        }
    }
    println!(
        "{target}: {executions} executions in {:.1} s, seed {seed}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn traceparent_parsing_never_panics() {
    fuzz("traceparent", properties::traceparent);
}

#[test]
fn baggage_parsing_never_panics() {
    fuzz("baggage", properties::baggage);
}

#[test]
fn a_whole_record_is_interpreted_without_panicking_and_keeps_its_place() {
    let interpreter = properties::record_interpreter();
    fuzz("record", |input| properties::record(&interpreter, input));
}

#[test]
fn config_file_parsing_never_panics() {
    fuzz("config", properties::config);
}

#[test]
fn no_otlp_request_body_makes_the_receiver_panic_or_answer_500() {
    let server = properties::Server::otlp();
    fuzz_from("otlp", vec![properties::otlp_protobuf_seed()], |input| {
        properties::otlp(&server, input)
    });
}

#[test]
fn no_query_string_makes_the_api_answer_500() {
    let server = properties::Server::api();
    fuzz("query", |input| properties::query(&server, input));
}
