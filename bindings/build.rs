//! Builds `libfrontrun_io.so` alongside the extension module and places it
//! inside the Python package, so that every build of the package (wheel,
//! `maturin develop`, editable install) carries a preload library that
//! matches it.
//!
//! It also emits pyo3's interpreter-version cfgs for the crate itself.
//!
//! The nested cargo uses its own target directory: the outer build holds
//! the lock on the main one.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    // Py_3_11, Py_3_12, ... for the per-version frame layouts in src/frame.rs.
    pyo3_build_config::use_pyo3_cfgs();
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("bindings/ lives inside the workspace")
        .to_path_buf();
    for watched in [
        "preload/src",
        "preload/Cargo.toml",
        "ring/src",
        "ring/Cargo.toml",
        "wire/src",
        "wire/Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let release = env::var("PROFILE").map(|p| p == "release").unwrap_or(false);
    let target_dir = workspace.join("target").join("preload-for-bindings");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", "frontrun-preload", "--target-dir"])
        .arg(&target_dir)
        // Flags meant for the extension module (maturin passes some) must
        // not leak into the preload library's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .expect("failed to run cargo for the preload library");
    assert!(
        status.success(),
        "building libfrontrun_io.so failed (see the output above)"
    );

    let built = target_dir
        .join(if release { "release" } else { "debug" })
        .join("libfrontrun_io.so");
    let dest = manifest_dir
        .join("python")
        .join("frontrun")
        .join("libfrontrun_io.so");
    // A debug build (cargo check, clippy, cargo test) must not replace the
    // optimised library a release build (scripts/setup) put in the package:
    // tests and benchmarks would run the unoptimised one without a sign.
    if !release && dest.exists() {
        return;
    }
    // Copy through a temporary name so a process that has the old library
    // mapped (LD_PRELOAD) keeps a valid file.
    let tmp = dest.with_extension("so.tmp");
    std::fs::copy(&built, &tmp)
        .unwrap_or_else(|e| panic!("copying {} failed: {e}", built.display()));
    std::fs::rename(&tmp, &dest)
        .unwrap_or_else(|e| panic!("installing {} failed: {e}", dest.display()));
}
