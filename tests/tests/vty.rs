//! The PowerVM vty's NUL after a carriage return, sent through QEMU's serial input:
//! the kernel drops it, and a NUL anywhere else discards its line with an error.

use lpar_cmm_tests::qemu::Qemu;

#[test]
fn a_nul_after_cr_does_not_reach_the_command() {
    let mut vm = Qemu::boot_default();
    // What the PowerVM vty sends for three lines typed with CR.
    vm.send(b"version\r\0echo one\r\0echo two\r\0");
    let r = vm.next_reply("version");
    assert!(r.status.is_ok(), "{}", r.text());
    let one = vm.next_reply("echo one");
    assert_eq!(one.lines, ["one"], "{}", one.text());
    assert!(one.status.is_ok());
    let two = vm.next_reply("echo two");
    assert_eq!(two.lines, ["two"], "{}", two.text());
    assert!(two.status.is_ok());

    // A NUL that does not follow a CR is junk: its line is refused, whole.
    vm.send(b"ech\0o three\r");
    let e = vm.next_reply("ech\\0o three");
    assert_eq!(
        e.status,
        Err("NUL byte in line (line discarded)".to_string()),
        "{}",
        e.text()
    );
    assert!(e.lines.is_empty(), "{}", e.text());
    // And the next line is whole again.
    let r = vm.ok("echo four");
    assert_eq!(r.lines, ["four"]);
    assert!(
        !vm.transcript().contains("unknown command"),
        "{}",
        vm.transcript()
    );
    assert_eq!(vm.poweroff(), 0);
}

/// A second vty (QEMU's `spapr-vty` on a socket, beside the console) is taken by
/// the echo driver, a device added as one file plus its entry in the driver
/// list: what the host writes comes back unchanged, and its interrupts are
/// counted in the `cpu` reply's own row.
#[test]
fn a_second_vty_echoes_and_counts_its_interrupts() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("lpar-cmm-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("echo.sock");
    let _ = std::fs::remove_file(&sock);
    let mut vm = Qemu::builder()
        .args([
            "-chardev".to_string(),
            format!("socket,id=echo,path={},server=on,wait=off", sock.display()),
            "-device".to_string(),
            "spapr-vty,chardev=echo,reg=0x71000010".to_string(),
        ])
        .boot();
    assert!(
        vm.log_contains("echo-vty: vty@71000010 echoes its input"),
        "{}",
        vm.transcript()
    );
    assert_eq!(vm.ok("cpu").get("interrupts_external_echo_vty"), 0);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let sent = b"hello, second vty\n".repeat(3);
    s.write_all(&sent).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < sent.len() && Instant::now() < deadline {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the echo: {e}"),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&sent)
    );
    assert!(vm.ok("cpu").get("interrupts_external_echo_vty") >= 1);
    // The console is still the first vty.
    assert_eq!(vm.ok("echo still here").lines, ["still here"]);
    assert_eq!(vm.poweroff(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
