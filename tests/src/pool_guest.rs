//! Guests for the pool manager's tests: a 512 MiB lpar-cmm guest with a
//! virtio-balloon (`balloon0`) and a QMP socket, booted by the harness so that
//! the test keeps its console while the manager attaches by the socket.

use std::path::PathBuf;

use crate::Qemu;

/// A fresh socket path `<tag>.sock` in a directory of this test process
/// (`group` names the directory, so tests running at once do not collide).
pub fn qmp_sock(group: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lpar-cmm-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(format!("{tag}.sock"));
    let _ = std::fs::remove_file(&p);
    p
}

/// Boots guest `name` (512 MiB, balloon, QMP) and returns it with its socket.
pub fn boot(group: &str, name: &str) -> (Qemu, PathBuf) {
    let s = qmp_sock(group, name);
    let vm = Qemu::builder()
        .mem("512M")
        .append("cmm.delay_ms=20 cmm.min_mem_mb=32")
        .args(["-device", "virtio-balloon-pci,id=balloon0"])
        .qmp(&s)
        .boot();
    (vm, s)
}
