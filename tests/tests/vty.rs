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
