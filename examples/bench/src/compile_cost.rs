//! `compile-cost`: what deriving `Model` costs at build time.

use std::time::Instant;

use crate::Result;

/// Build time of a crate of 50 models deriving `Model`, against the same 50 structs deriving serde's
/// `Serialize` and `Deserialize`: dependencies are built first, then only the crate itself is rebuilt
/// (best of 3), in a target directory of its own under `target/`.
pub fn run() -> Result<()> {
    use std::process::Command;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let root = workspace.join("target/compile-cost");
    let runtime = workspace.join("model-runtime");
    // The toolchain building this binary, by absolute path: a rustup proxy would obey any
    // `rust-toolchain` file it meets in a dependency's directory.
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(&workspace)
        .output()?;
    let rustc =
        std::path::PathBuf::from(String::from_utf8(sysroot.stdout)?.trim()).join("bin/rustc");
    let mut results = Vec::new();
    for (name, deps, derive, attrs) in [
        (
            "fifty_models",
            format!(
                "model-runtime = {{ path = {:?} }}",
                runtime.display().to_string()
            ),
            "model_runtime::Model",
            true,
        ),
        (
            "fifty_serde",
            "serde = { version = \"1\", features = [\"derive\"] }".to_owned(),
            "serde::Serialize, serde::Deserialize",
            false,
        ),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("src"))?;
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n\n[dependencies]\n{deps}\n"
            ),
        )?;
        let mut src = String::new();
        for i in 0..50 {
            src.push_str(&format!("#[derive({derive})]\n"));
            if attrs {
                src.push_str(&format!(
                    "#[model(table = \"t{i}\")]\n#[unique_together(name, group_id)]\n"
                ));
            }
            src.push_str(&format!("pub struct Model{i} {{\n"));
            if attrs {
                src.push_str("    #[model(primary_key, auto_increment)]\n");
            }
            src.push_str("    pub id: i64,\n");
            if attrs {
                src.push_str("    #[unique]\n    #[model(max_length = 40)]\n");
            }
            src.push_str("    pub code: String,\n");
            if attrs {
                src.push_str("    #[model(max_length = 100)]\n");
            }
            src.push_str("    pub name: String,\n    pub group_id: i32,\n    pub price: f64,\n    pub note: Option<String>,\n}\n\n");
        }
        std::fs::write(dir.join("src/lib.rs"), &src)?;
        let build = || {
            Command::new(env!("CARGO"))
                .args(["build", "--quiet"])
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", root.join("target"))
                .env("RUSTC", &rustc)
                .status()
        };
        if !build()?.success() {
            return Err(format!("building {name} failed").into());
        }
        let mut best = f64::MAX;
        for _ in 0..3 {
            std::fs::write(dir.join("src/lib.rs"), format!("{src}\n"))?;
            let started = Instant::now();
            if !build()?.success() {
                return Err(format!("rebuilding {name} failed").into());
            }
            best = best.min(started.elapsed().as_secs_f64());
            // Make the next write a change, so that cargo rebuilds.
            std::fs::write(dir.join("src/lib.rs"), &src)?;
        }
        results.push((name, best));
    }
    println!("\nCompile cost: debug build of the crate alone, dependencies built, best of 3");
    println!("| crate | seconds |");
    println!("|---|---:|");
    for (name, secs) in &results {
        println!("| {name} | {secs:.2} |");
    }
    println!("ratio Model / serde: {:.2}", results[0].1 / results[1].1);
    Ok(())
}
