//! Links the `lab` binary as a position-dependent executable.
//!
//! A PIE of this size carries about 50,000 relative relocations that the
//! dynamic loader applies at every start, touching a page for each: about
//! 2 ms of every `lab run`, more than the rest of its start-up. Linked at a
//! fixed address, the binary starts with only its few library symbols to
//! bind. (Address randomisation of the lab's own code is lost; its stack,
//! heap and libraries are still randomised.)

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
