//! Names the build for `leadsync --version`: the git commit it was built from and the profile,
//! as `0.1.0 (commit 206f7a9c1d2e, release build)`. Outside a checkout (the container image's
//! build context has no `.git`), `LEADSYNC_BUILD` names the commit instead, else "unknown".

use std::{path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-env-changed=LEADSYNC_BUILD");
    let commit = std::env::var("LEADSYNC_BUILD")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=LEADSYNC_VERSION={version} (commit {commit}, {profile} build)");
}

/// The short commit of `HEAD`, and a rerun whenever `HEAD` or the branch it names moves (only
/// for files that exist: a missing one would make Cargo rerun this script on every build).
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
