//! Compile-time checks: every case under `tests/ui/fail` must fail with the message in its `.stderr`
//! (bless changes with `TRYBUILD=overwrite cargo test --test ui`), and every case under `tests/ui/pass`
//! must compile and run.
//!
//! The messages are the compiler's, and their wording changes between releases: the suite runs on
//! the rustc version in `tests/ui/TOOLCHAIN` and is reported ignored on any other (see `build.rs`).

#[test]
#[cfg_attr(
    not(ui_toolchain),
    ignore = "compile-fail messages are blessed for the rustc in tests/ui/TOOLCHAIN; on another, bless them (TRYBUILD=overwrite cargo test --test ui -- --ignored) and update that file"
)]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
