//! Golden test of the decoder and disassembler against GNU objdump.
//!
//! `tests/data/decode.golden` holds one line per encoding, `<pc>: <encoding>  <text>`, produced
//! by `tests/data/regen-golden.sh` from objdump's disassembly of `rv64gc.S` (every RV64GC
//! instruction form) and `illegal.S` (reserved encodings, whose text is `illegal`). The test
//! decodes each encoding, disassembles it at its pc and compares the text, reporting every
//! mismatch with its line number. It also checks that the decoded length agrees with the width
//! of the encoding and that exactly the `illegal` lines decode to `Op::Illegal`.
//!
//! With `BLESS=1` the test rewrites the texts from our own disassembler instead of comparing,
//! for reviewing a deliberate change as a diff of the golden file.

use std::fmt::Write as _;
use std::path::PathBuf;

use shoal_engine::rv64::{Op, decode, disassemble};

/// One instruction line of the golden file.
struct Case<'a> {
    pc: u64,
    encoding: &'a str,
    raw: u32,
    text: &'a str,
}

/// Parses an instruction line, or returns `None` for blank and comment lines.
fn parse(line: &str) -> Option<Result<Case<'_>, String>> {
    if line.trim().is_empty() || line.starts_with('#') {
        return None;
    }
    let parsed = (|| {
        let (pc, rest) = line.split_once(": ").ok_or("missing `<pc>: `")?;
        let (encoding, text) = rest.split_once("  ").ok_or("missing two spaces before the text")?;
        let pc = u64::from_str_radix(pc, 16).map_err(|e| format!("bad pc: {e}"))?;
        let raw = u32::from_str_radix(encoding, 16).map_err(|e| format!("bad encoding: {e}"))?;
        Ok(Case { pc, encoding, raw, text })
    })();
    Some(parsed)
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/decode.golden")
}

#[test]
fn decode_matches_objdump() {
    let path = golden_path();
    let golden = std::fs::read_to_string(&path).expect("tests/data/decode.golden is readable");
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");

    let mut failures = String::new();
    let mut blessed = String::with_capacity(golden.len());
    let mut cases = 0;
    for (index, line) in golden.lines().enumerate() {
        let number = index + 1;
        let Some(parsed) = parse(line) else {
            blessed.push_str(line);
            blessed.push('\n');
            continue;
        };
        let case = match parsed {
            Ok(case) => case,
            Err(error) => {
                let _ = writeln!(failures, "line {number}: {error}: {line}");
                continue;
            }
        };
        cases += 1;
        let inst = decode(case.raw);
        let ours = disassemble(case.raw, case.pc);
        let _ = writeln!(blessed, "{:x}: {}  {ours}", case.pc, case.encoding);

        let width = if case.encoding.len() == 4 { 2 } else { 4 };
        if inst.len != width {
            let _ = writeln!(
                failures,
                "line {number}: {} decodes with length {}, its encoding has {width} bytes",
                case.encoding, inst.len
            );
        }
        if (inst.op == Op::Illegal) != (case.text == "illegal") {
            let _ = writeln!(
                failures,
                "line {number}: {} decodes as {:?}, golden text is `{}`",
                case.encoding, inst.op, case.text
            );
        }
        if ours != case.text {
            let _ = writeln!(
                failures,
                "line {number}: {}\n    expected: {}\n    actual:   {ours}",
                case.encoding, case.text
            );
        }
    }

    assert!(cases > 500, "the golden file lost its cases: only {cases} found");
    if bless {
        std::fs::write(&path, blessed).expect("tests/data/decode.golden is writable");
        return;
    }
    assert!(failures.is_empty(), "decode.golden mismatches:\n{failures}");
}
