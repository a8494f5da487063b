//! The kernel's device tree blob, rebuilt from `devtree dump` (`fdt: <hex>`
//! lines of 32 bytes, then `fdt_bytes: N`) and decoded with `dtc`, so tests can
//! compare it with QEMU's own tree (`Builder::qemu_dts`).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{Qemu, Reply};

/// Rebuilds the blob from a `devtree dump` reply; panics (with the reply) if a
/// line is malformed or the length disagrees with `fdt_bytes`.
pub fn blob_from_reply(r: &Reply) -> Vec<u8> {
    let mut blob = Vec::new();
    for line in r.lines.iter().filter_map(|l| l.strip_prefix("fdt: ")) {
        assert!(
            line.len() % 2 == 0 && line.len() <= 64,
            "bad dump line `{line}`"
        );
        for i in (0..line.len()).step_by(2) {
            let byte = u8::from_str_radix(&line[i..i + 2], 16)
                .unwrap_or_else(|_| panic!("bad hex in dump line `{line}`"));
            blob.push(byte);
        }
    }
    let want = r.get("fdt_bytes");
    assert_eq!(blob.len() as i64, want, "dump length");
    blob
}

/// Decodes a blob with `dtc -I dtb -O dts`.
pub fn dts_from_blob(blob: &[u8]) -> String {
    let mut child = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dtc (make setup)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(blob)
        .expect("write to dtc");
    let out = child.wait_with_output().expect("wait for dtc");
    assert!(
        out.status.success(),
        "dtc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `devtree dump` and returns the blob and its `dtc` decoding.
pub fn dump(vm: &mut Qemu) -> (Vec<u8>, String) {
    let r = vm.ok("devtree dump");
    let blob = blob_from_reply(&r);
    let dts = dts_from_blob(&blob);
    (blob, dts)
}
