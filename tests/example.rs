//! The bundled example (examples/hello-riscv64, built from examples/hello.c) runs under
//! `shoal run` exactly as the README shows. It needs no cross tools or qemu, so it always runs.

use std::process::Command;

#[test]
fn bundled_example_runs() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello-riscv64");
    let out = Command::new(env!("CARGO_BIN_EXE_shoal")).args(["run", example, "a", "b c"]).output().expect("run shoal");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello from a RISC-V guest running under shoal!\n  argv[1] = a\n  argv[2] = b c\n\
         primes below 100: 2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97\n"
    );
    assert_eq!(out.status.code(), Some(2), "the example exits with its argument count");
}

#[test]
fn bad_programs_get_a_one_line_error() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-elf");
    std::fs::create_dir_all(&dir).unwrap();
    let example = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello-riscv64")).unwrap();
    let mut wrong_machine = example.clone();
    wrong_machine[18] = 62; // e_machine = EM_X86_64
    let mut wrong_class = example.clone();
    wrong_class[4] = 1; // ELFCLASS32
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("truncated", example[..100].to_vec(), "truncated ELF file"),
        ("header-only", example[..40].to_vec(), "truncated ELF file"),
        ("not-elf", b"hello, world\n".to_vec(), "not an ELF file"),
        ("wrong-machine", wrong_machine, "wrong machine"),
        ("wrong-class", wrong_class, "not a 64-bit little-endian ELF"),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_shoal")).arg("run").arg(&path).output().expect("run shoal");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line expected: {err}");
        assert!(err.contains(name) && err.contains(reason), "{name}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_shoal")).args(["run", "/nonexistent/prog"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/prog"));
}
