//! Marks what the tests cannot run here, so that those tests are reported as ignored, with the
//! reason, instead of passing without having run:
//! - `skip_postgres` / `skip_mysql`: the server backend's URL is not set when the tests are built;
//! - `skip_galera`: `TEST_GALERA_URLS` (the nodes of a MariaDB Galera cluster, `.ci/galera start`)
//!   is not set when the tests are built;
//! - `ui_toolchain`: set when rustc is the version the compile-fail messages were blessed with
//!   (`tests/ui/TOOLCHAIN`); their wording changes between compiler releases.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo::rustc-check-cfg=cfg(skip_mysql)");
    println!("cargo::rustc-check-cfg=cfg(skip_galera)");
    println!("cargo::rustc-check-cfg=cfg(ui_toolchain)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/ui/TOOLCHAIN");
    let blessed = std::fs::read_to_string("tests/ui/TOOLCHAIN").unwrap_or_default();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    // `rustc 1.95.0 (59807616e 2026-04-14)`
    if version.split_whitespace().nth(1) == Some(blessed.trim()) {
        println!("cargo::rustc-cfg=ui_toolchain");
    }
    for (var, cfg) in [
        ("TEST_POSTGRES_URL", "skip_postgres"),
        ("TEST_MYSQL_URL", "skip_mysql"),
        ("TEST_GALERA_URLS", "skip_galera"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).map_or(true, |url| url.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
