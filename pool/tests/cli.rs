//! The `lpar-pool` binary's errors, which a user meets before any guest runs: a
//! configuration whose entitlements exceed the pool, a missing QEMU, a socket that
//! is not QMP, a bad command line. None of them starts anything.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpar-pool-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(name: &str, text: &str) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lpar-pool"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ONE: &str = "pool = \"512M\"\n[[partition]]\nname = \"a\"\nlogical = \"256M\"\n";

#[test]
fn check_prints_the_initial_division() {
    let c = config("ok.toml", ONE);
    let (code, out, _) = run(&["check", c.to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("pool_bytes: 536870912"), "{out}");
    assert!(
        out.contains("a: logical=268435456 weight=128 entitled=67108864 allotted=268435456"),
        "{out}"
    );
}

#[test]
fn entitlements_beyond_the_pool_are_refused_before_anything_starts() {
    let c = config(
        "over.toml",
        "pool = \"100M\"\n[[partition]]\nname = \"a\"\nlogical = \"256M\"\n[[partition]]\nname = \"b\"\nlogical = \"256M\"\n",
    );
    // QEMU is "missing" too: the configuration is refused first.
    let (code, _, err) = run(
        &["run", c.to_str().unwrap()],
        &[("QEMU", "/nonexistent/qemu")],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("the I/O entitlements add up to 128 MiB, more than the pool's 100 MiB"),
        "{err}"
    );
    assert!(!err.contains("QEMU"), "{err}");
}

#[test]
fn a_missing_qemu_is_named() {
    let c = config("noqemu.toml", ONE);
    let kernel = dir().join("kernel.elf");
    std::fs::write(&kernel, b"not really").unwrap();
    let k = kernel.to_str().unwrap();
    let (code, _, err) = run(
        &[
            "run",
            c.to_str().unwrap(),
            "--out",
            dir().join("out").to_str().unwrap(),
        ],
        &[
            ("QEMU", "/nonexistent/qemu-system-ppc64"),
            ("LPAR_CMM_KERNEL", k),
            ("LPAR_CMM_BOOTROM", k),
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("partition a: QEMU is missing: cannot run /nonexistent/qemu-system-ppc64"),
        "{err}"
    );
}

#[test]
fn a_socket_that_is_not_qmp_is_named() {
    let sock = dir().join("web.sock");
    let _ = std::fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
    });
    let c = config(
        "attach.toml",
        &format!(
            "pool = \"512M\"\n[[partition]]\nname = \"web\"\nlogical = \"256M\"\nqmp = \"{}\"\n",
            sock.display()
        ),
    );
    let (code, _, err) = run(&["run", c.to_str().unwrap()], &[]);
    server.join().unwrap();
    assert_eq!(code, 2);
    assert!(
        err.contains("partition web:") && err.contains("is not a QMP socket"),
        "{err}"
    );
}

#[test]
fn a_bad_command_line_prints_the_usage() {
    let (code, _, err) = run(&["frobnicate"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("usage: lpar-pool check <config.toml>"),
        "{err}"
    );
    let (code, _, err) = run(&["check", "/nonexistent.toml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.toml"), "{err}");
}
