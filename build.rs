//! Marks the server backends whose URL is not set when the tests are built, so that their tests are
//! reported as ignored, with the reason, instead of passing without having run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo::rustc-check-cfg=cfg(skip_mysql)");
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in [
        ("TEST_POSTGRES_URL", "skip_postgres"),
        ("TEST_MYSQL_URL", "skip_mysql"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).map_or(true, |url| url.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
