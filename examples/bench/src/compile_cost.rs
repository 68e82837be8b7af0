//! `compile-cost`: what deriving `Model` costs at build time.

use crate::Result;

/// Build time of a crate of 50 models deriving `Model`, against the same 50 structs deriving serde's
/// `Serialize` and `Deserialize`: dependencies are built first, then only the crate itself is rebuilt,
/// in a target directory of its own under `target/`. Two figures each: a full build of the crate
/// (`CARGO_INCREMENTAL=0`, as in CI and release builds), and an incremental rebuild after a change
/// that leaves every item as it was (what the incremental cache costs to check).
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
    // A target directory per mode: cargo rebuilds the path dependencies when the mode changes.
    let build = |dir: &std::path::Path, incremental: bool| {
        let (mode, target) = if incremental {
            ("1", "target-incremental")
        } else {
            ("0", "target-full")
        };
        Command::new(env!("CARGO"))
            .args(["build", "--quiet"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", root.join(target))
            .env("CARGO_INCREMENTAL", mode)
            .env("RUSTC", &rustc)
            .status()
    };
    let mut crates = Vec::new();
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
        for incremental in [false, true] {
            if !build(&dir, incremental)?.success() {
                return Err(format!("building {name} failed").into());
            }
        }
        crates.push((name, dir, src));
    }
    // Rounds alternate between the two crates, so that a slower spell of the machine falls on both;
    // each figure is the best round. CPU time of the build (cargo and rustc, children of this
    // process) is steadier here than wall time; rustc's front end, where a derive's cost lies, runs
    // on one thread, so the two are close.
    const ROUNDS: usize = 5;
    let mut best = vec![[f64::MAX; 2]; crates.len()];
    for _ in 0..ROUNDS {
        for (i, (name, dir, src)) in crates.iter().enumerate() {
            for (mode, incremental) in [false, true].into_iter().enumerate() {
                // A change cargo sees (the file's length), with the items themselves unchanged.
                let padded = format!("{src}\n");
                let next = if std::fs::read_to_string(dir.join("src/lib.rs"))? == padded {
                    src.clone()
                } else {
                    padded
                };
                std::fs::write(dir.join("src/lib.rs"), next)?;
                let before = children_cpu();
                if !build(dir, incremental)?.success() {
                    return Err(format!("rebuilding {name} failed").into());
                }
                best[i][mode] = best[i][mode].min(children_cpu() - before);
            }
        }
    }
    println!(
        "\nCompile cost: debug build of the crate alone, dependencies built, CPU seconds, best of {ROUNDS} alternating rounds"
    );
    println!("| crate | full build | incremental rebuild, items unchanged |");
    println!("|---|---:|---:|");
    for ((name, ..), [full, incremental]) in crates.iter().zip(&best) {
        println!("| {name} | {full:.2} | {incremental:.2} |");
    }
    println!(
        "ratio Model / serde: full build {:.2}, incremental rebuild {:.2}",
        best[0][0] / best[1][0],
        best[0][1] / best[1][1]
    );
    // CPU time on this machine drifts by a fifth within an hour; the instructions rustc executes do
    // not. Counted by valgrind (when installed) over the full build's compiler call.
    if Command::new("valgrind").arg("--version").output().is_ok() {
        let mut counts = Vec::new();
        for (name, dir, _) in &crates {
            match instructions(dir, &root.join("target-full"), &rustc) {
                Ok(count) => counts.push((name, count)),
                Err(error) => {
                    let error = error.to_string();
                    let first = error.lines().next().unwrap_or_default();
                    println!("instructions of {name}: not counted ({first})");
                    return Ok(());
                }
            }
        }
        println!("\nInstructions rustc executes for the full build of the crate alone (valgrind):");
        for (name, count) in &counts {
            println!("| {name} | {:.3} G |", *count as f64 / 1e9);
        }
        println!(
            "ratio Model / serde: {:.2}",
            counts[0].1 as f64 / counts[1].1 as f64
        );
    } else {
        println!(
            "(install valgrind to also count the instructions, which do not drift as time does)"
        );
    }
    Ok(())
}

/// The instructions (valgrind's `I refs`) the compiler executes for a full build of the crate in
/// `dir`, its dependencies built: cargo is asked for the compiler's command line (`-v`), which is
/// then run under cachegrind without cache simulation.
fn instructions(
    dir: &std::path::Path,
    target: &std::path::Path,
    rustc: &std::path::Path,
) -> Result<u64> {
    use std::process::Command;
    let touch = || -> Result<()> {
        let lib = dir.join("src/lib.rs");
        let src = std::fs::read(&lib)?;
        std::fs::write(&lib, src)?;
        Ok(())
    };
    touch()?;
    let verbose = Command::new(env!("CARGO"))
        .args(["build", "-v"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_INCREMENTAL", "0")
        .env("RUSTC", rustc)
        .output()?;
    let log = String::from_utf8_lossy(&verbose.stderr);
    let command = log
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Running `"))
        .next_back()
        .and_then(|line| line.strip_suffix('`'))
        .ok_or("cargo did not print the compiler's command")?
        .to_owned();
    touch()?;
    let run = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null {command}"
        ))
        .current_dir(dir)
        .env("CARGO_INCREMENTAL", "0")
        .output()?;
    let report = String::from_utf8_lossy(&run.stderr);
    if !run.status.success() {
        return Err(format!("the compiler failed under valgrind: {report}").into());
    }
    report
        .lines()
        .find_map(|line| {
            // `==123== I   refs:      3,804,806,734`
            let (label, count) = line.split_once("refs:")?;
            label.trim_end().ends_with(" I").then_some(())?;
            count.trim().replace(',', "").parse().ok()
        })
        .ok_or_else(|| format!("no instruction count in valgrind's report: {report}").into())
}

/// CPU time (user and system) of this process's finished children, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_CHILDREN exists on Linux.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
