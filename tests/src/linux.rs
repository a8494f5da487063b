//! A Linux peer for `make bench-linux`: the Debian ppc64el kernel and
//! `busybox-static`, fetched with apt through the Debian archive this machine's
//! apt sources name, cached under `target/bench-linux/`, and a small initramfs
//! that loads Linux's own `virtio_balloon`. Nothing of Linux is kept in the
//! repository: the packages are downloaded when the bench runs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The line the initramfs prints once the balloon driver is loaded.
pub const READY: &str = "linux-bench ready";

/// The modules `virtio_balloon` needs, in load order (from the package's
/// `modinfo` `depends=` fields: virtio_pci needs the first four).
const MODULES: [&str; 6] = [
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_balloon",
];

/// What the bench boots.
pub struct LinuxGuest {
    /// The kernel (an ELF `vmlinux`).
    pub kernel: PathBuf,
    /// The initramfs (newc cpio).
    pub initrd: PathBuf,
    /// The kernel package, as downloaded.
    pub package: String,
}

/// The Debian mirror of this machine's apt sources (`URIs:` of a deb822
/// source, or a one-line `deb` source), the one whose suites include the
/// release itself.
pub fn debian_mirror() -> Result<(String, String), String> {
    let mut texts = Vec::new();
    for p in ["/etc/apt/sources.list"] {
        if let Ok(t) = std::fs::read_to_string(p) {
            texts.push(t);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            let p = e.path();
            let name = p.to_string_lossy().into_owned();
            if name.ends_with(".sources") || name.ends_with(".list") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    texts.push(t);
                }
            }
        }
    }
    for t in &texts {
        if let Some(found) = parse_sources(t) {
            return Ok(found);
        }
    }
    Err("no Debian archive in the apt sources (/etc/apt/sources.list*)".into())
}

/// The first Debian mirror and release in an apt sources file (deb822 or
/// one-line): (URI, suite).
pub fn parse_sources(text: &str) -> Option<(String, String)> {
    // One-line form: `deb [options] URI suite components`.
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() != Some(&"deb") {
            continue;
        }
        // Options (`[...]`) may span words up to the one ending in ']'.
        let rest: &[&str] = if w.get(1).is_some_and(|x| x.starts_with('[')) {
            let i = w.iter().position(|x| x.ends_with(']'))?;
            &w[i + 1..]
        } else {
            &w[1..]
        };
        if let [uri, suite, ..] = rest {
            if uri.contains("debian") && !uri.contains("security") && !suite.contains('-') {
                return Some((uri.to_string(), suite.to_string()));
            }
        }
    }
    // deb822: stanzas separated by blank lines.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else {
            continue;
        };
        let Some(uri) = uris.split_whitespace().next() else {
            continue;
        };
        let Some(suite) = suites.split_whitespace().find(|s| !s.contains('-')) else {
            continue;
        };
        if uri.contains("debian") && !uri.contains("security") {
            return Some((uri.to_string(), suite.to_string()));
        }
    }
    None
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// apt with its own state under `dir`, for ppc64el only: the machine's apt
/// configuration and package lists are not touched.
fn apt(dir: &Path, tool: &str) -> Command {
    let d = dir.display();
    let mut c = Command::new(tool);
    c.args([
        "-q",
        "-o",
        &format!("Dir::State={d}/state"),
        "-o",
        &format!("Dir::State::Lists={d}/state/lists"),
        "-o",
        &format!("Dir::State::status={d}/state/status"),
        "-o",
        &format!("Dir::Cache={d}/cache"),
        "-o",
        &format!("Dir::Etc::SourceList={d}/sources.list"),
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        "APT::Architecture=ppc64el",
        "-o",
        "APT::Architectures=ppc64el",
        "-o",
        "APT::Sandbox::User=root",
    ]);
    c
}

/// Downloads (once) the kernel and busybox packages into `dir`, extracts them
/// and builds the initramfs.
pub fn prepare(dir: &Path) -> Result<LinuxGuest, String> {
    let (mirror, suite) = debian_mirror()?;
    std::fs::create_dir_all(dir.join("state/lists/partial")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("cache/archives/partial")).map_err(|e| e.to_string())?;
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let have = |prefix: &str| -> Option<PathBuf> {
        std::fs::read_dir(&debs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
    };
    if have("linux-image-").is_none() || have("busybox-static").is_none() {
        std::fs::write(
            dir.join("sources.list"),
            format!("deb [arch=ppc64el] {mirror} {suite} main\n"),
        )
        .map_err(|e| e.to_string())?;
        let _ = std::fs::write(dir.join("state/status"), "");
        eprintln!("bench-linux: apt update ({mirror} {suite}, ppc64el)");
        run(apt(dir, "apt-get").arg("update"))?;
        // The meta-package names the current kernel package.
        let deps = run(apt(dir, "apt-cache").args(["depends", "linux-image-powerpc64le"]))?;
        let image = deps
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .ok_or("linux-image-powerpc64le names no kernel package")?
            .to_string();
        eprintln!("bench-linux: downloading {image} and busybox-static");
        run(apt(dir, "apt-get")
            .current_dir(&debs)
            .args(["download", &image, "busybox-static"]))?;
    }
    let kdeb = have("linux-image-").ok_or("no kernel package")?;
    let bdeb = have("busybox-static").ok_or("no busybox package")?;
    let root = dir.join("extract");
    if !root.join("done").exists() {
        let _ = std::fs::remove_dir_all(&root);
        for d in [&kdeb, &bdeb] {
            run(Command::new("dpkg-deb").arg("-x").arg(d).arg(&root))?;
        }
        std::fs::write(root.join("done"), "").map_err(|e| e.to_string())?;
    }
    let boot = std::fs::read_dir(root.join("boot")).map_err(|e| e.to_string())?;
    let kernel = boot
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinux-"))
        })
        .ok_or("no vmlinux in the kernel package")?;
    let release = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinux-"))
        .ok_or("vmlinux name")?
        .to_string();
    let modules = root.join("lib/modules").join(&release).join("kernel");
    let mut files: Vec<(String, u32, Vec<u8>)> = vec![
        ("bin".into(), 0o040_755, Vec::new()),
        ("lib".into(), 0o040_755, Vec::new()),
        ("init".into(), 0o100_755, init_script().into_bytes()),
    ];
    let busybox = std::fs::read(root.join("bin/busybox")).map_err(|e| e.to_string())?;
    files.push(("bin/busybox".into(), 0o100_755, busybox));
    for m in MODULES {
        let p = find_file(&modules, &format!("{m}.ko")).ok_or(format!("no {m}.ko"))?;
        let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
        files.push((format!("lib/{m}.ko"), 0o100_644, bytes));
    }
    let initrd = dir.join("initrd.cpio");
    std::fs::write(&initrd, newc(&files)).map_err(|e| e.to_string())?;
    Ok(LinuxGuest {
        kernel,
        initrd,
        package: kdeb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// The initramfs's `/init`: mounts, loads the balloon driver and its
/// dependencies, mounts a tmpfs for the workload, says it is ready and runs
/// the command lines it reads from the console.
fn init_script() -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox mkdir -p /proc /sys /dev /mnt\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t sysfs sys /sys\n\
         /bin/busybox mount -t devtmpfs dev /dev\n",
    );
    for m in MODULES {
        s.push_str(&format!("/bin/busybox insmod /lib/{m}.ko\n"));
    }
    s.push_str(
        "/bin/busybox mount -t tmpfs -o size=900m tmp /mnt\n\
         /bin/busybox --install -s /bin\n\
         stty -echo 2>/dev/null\n\
         echo\n\
         echo \"",
    );
    s.push_str(READY);
    // A loop of `read` and `eval`, not an interactive shell: busybox's line
    // editing asks the terminal for the cursor position and swallows input
    // while it waits for an answer the serial console never gives.
    s.push_str("\"\nwhile true; do printf '# '; read -r line || break; eval \"$line\"; done\n");
    s
}

/// A newc (`070701`) cpio archive of `(path, mode, contents)`, as the kernel
/// unpacks an initramfs.
pub fn newc(files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    fn pad(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }
    let mut out = Vec::new();
    let entry = |out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]| {
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0,
            0,
            0,
            0,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(out);
        out.extend_from_slice(data);
        pad(out);
    };
    for (i, (name, mode, data)) in files.iter().enumerate() {
        entry(
            &mut out,
            u32::try_from(i + 1).unwrap_or(0),
            name,
            *mode,
            data,
        );
    }
    entry(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_headers_names_and_padding() {
        let a = newc(&[("init".into(), 0o100_755, b"#!x\n".to_vec())]);
        assert_eq!(&a[..6], b"070701");
        // ino 1, mode 0o100755 = 0x81ED, filesize 4, namesize 5.
        let field = |i: usize| std::str::from_utf8(&a[6 + 8 * i..14 + 8 * i]).unwrap();
        assert_eq!(field(0), "00000001");
        assert_eq!(field(1), "000081ED");
        assert_eq!(field(6), "00000004");
        assert_eq!(field(11), "00000005");
        // 110 header bytes + "init\0" = 115, padded to 116; then the data.
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(&a[116..120], b"#!x\n");
        assert_eq!(&a[120..126], b"070701");
        assert!(a.windows(11).any(|w| w == b"TRAILER!!!\0"));
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn the_mirror_comes_from_either_sources_format() {
        let deb822 = "Types: deb\n# comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            parse_sources(deb822),
            Some(("http://deb.debian.org/debian".into(), "bookworm".into()))
        );
        let line = "deb http://security.debian.org/debian-security bookworm-security main\n\
                    deb [arch=amd64 signed-by=/x.gpg] http://ftp.de.debian.org/debian trixie main\n";
        assert_eq!(
            parse_sources(line),
            Some(("http://ftp.de.debian.org/debian".into(), "trixie".into()))
        );
        assert_eq!(
            parse_sources("deb https://packages.cloud.google.com/apt cloud-sdk main\n"),
            None
        );
    }
}
