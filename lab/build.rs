//! Build steps of the `lab` crate.
//!
//! - Links the `lab` binary as a position-dependent executable. A PIE of
//!   this size carries about 50,000 relative relocations that the dynamic
//!   loader applies at every start, touching a page for each: about 2 ms of
//!   every `lab run`, more than the rest of its start-up. Linked at a fixed
//!   address, the binary starts with only its few library symbols to bind.
//!   (Address randomisation of the lab's own code is lost; its stack, heap
//!   and libraries are still randomised.)
//! - Builds the board profiles of `qemu-configs/` into the crate
//!   (`$OUT_DIR/builtin_boards.rs`), so that an installed `lab` knows its
//!   boards without a checkout.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
    embed_board_profiles();
}

/// Writes `BUILTIN_BOARDS: &[(name, yaml)]`, one entry per profile in
/// `../qemu-configs`, sorted by name.
fn embed_board_profiles() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("..").join("qemu-configs");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut profiles: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list the board profiles in {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "yaml"))
        .map(|path| {
            println!("cargo::rerun-if-changed={}", path.display());
            let name = path
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let path = path.canonicalize().expect("a profile's absolute path");
            (name, path.to_string_lossy().into_owned())
        })
        .collect();
    profiles.sort();
    let mut out = String::from("/// The board profiles built into the lab: (name, YAML text).\n");
    out.push_str("pub(crate) const BUILTIN_BOARDS: &[(&str, &str)] = &[\n");
    for (name, path) in &profiles {
        writeln!(out, "    ({name:?}, include_str!({path:?})),").expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("builtin_boards.rs"), out)
        .expect("cannot write builtin_boards.rs into OUT_DIR");
}
