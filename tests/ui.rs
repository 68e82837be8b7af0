//! Compile-time checks: every case under `tests/ui/fail` must fail with the message in its `.stderr`
//! (bless changes with `TRYBUILD=overwrite cargo test --test ui`), and every case under `tests/ui/pass`
//! must compile and run.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
