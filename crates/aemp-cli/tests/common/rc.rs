//! A temporary `$AEMP_RC` and the built `aemp` binary run against it; shared by the CLI tests
//! (included with `#[path = "common/rc.rs"] mod rc;`).

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A temporary directory holding the config file, removed when dropped.
pub(crate) struct Rc {
    pub(crate) dir: PathBuf,
}

impl Rc {
    /// A fresh directory named after `name` and a random suffix.
    pub(crate) fn new(name: &str) -> Self {
        let mut r = [0_u8; 8];
        getrandom::fill(&mut r).expect("random");
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("aemp-cli-{name}-{hex}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { dir }
    }

    /// The config file (`$AEMP_RC`).
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `aemp ARGS` with `$AEMP_RC` set, not started yet.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aemp"));
        c.args(args)
            .env("AEMP_RC", self.path())
            .env_remove("RUST_LOG");
        c
    }

    /// Runs `aemp ARGS` to the end.
    pub(crate) fn aemp(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the aemp binary runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.aemp(args);
        assert!(
            out.status.success(),
            "aemp {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command that must exit with `code`; returns its stderr.
    pub(crate) fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.aemp(args);
        assert_eq!(out.status.code(), Some(code), "aemp {args:?}: {out:?}");
        String::from_utf8(out.stderr).expect("utf-8")
    }
}

impl Drop for Rc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
