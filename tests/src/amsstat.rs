//! Running the real `amsstat` of powerpc-utils against the kernel's statistics.
//!
//! The script comes from Debian's `powerpc-ibm-utils` package for ppc64el, fetched
//! with `apt-get download` into a private apt state under `target/amsstat/` (the
//! machine's own apt configuration is not touched, nothing is installed) and
//! unpacked with `dpkg-deb -x`. The file tree it reads (`/proc/ppc64/lparcfg`,
//! `/proc/meminfo`, `/sys/module/cmm/parameters`, `/sys/devices/system/cmm/cmm0`,
//! `/sys/bus/vio/...`) is rebuilt on the host from the kernel's `lparcfg`,
//! `meminfo` and `sysfs` output, and the script runs with its absolute paths
//! rooted there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Qemu;

/// Where the package and its contents are cached.
pub fn cache_dir() -> PathBuf {
    crate::workspace_root().join("target/amsstat")
}

fn apt(cache: &Path, args: &[&str]) -> Result<(), String> {
    let lists = cache.join("apt/lists");
    let arch = cache.join("apt/cache");
    fs::create_dir_all(lists.join("partial")).map_err(|e| e.to_string())?;
    fs::create_dir_all(arch.join("archives/partial")).map_err(|e| e.to_string())?;
    let out = Command::new("apt-get")
        .current_dir(cache)
        .arg("-q")
        .arg(format!("-oDir::State::Lists={}", lists.display()))
        .arg(format!("-oDir::Cache={}", arch.display()))
        .args([
            "-oAPT::Architecture=ppc64el",
            "-oAPT::Architectures::=ppc64el",
            "-oDebug::NoLocking=1",
        ])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Fetches and unpacks the package (once); returns the unpacked root holding
/// `usr/bin/amsstat` and `usr/sbin/pseries_platform`. `Err` says why it cannot be had.
pub fn fetch_tool() -> Result<PathBuf, String> {
    let cache = cache_dir();
    let root = cache.join("pkg");
    if root.join("usr/bin/amsstat").exists() {
        return Ok(root);
    }
    fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    // `make test` runs the big- and little-endian suites at once: one fetch at a
    // time, and the second finds the first's result.
    let lock = fs::File::create(cache.join("fetch.lock")).map_err(|e| e.to_string())?;
    lock.lock()
        .map_err(|e| format!("cannot lock the amsstat cache: {e}"))?;
    if root.join("usr/bin/amsstat").exists() {
        return Ok(root);
    }
    // The machine's own sources, with a private state: an index that fails to
    // update (a mirror mid-sync) is not fatal as long as the download works.
    let updated = apt(&cache, &["update"]);
    if let Err(e) = apt(&cache, &["download", "powerpc-ibm-utils:ppc64el"]) {
        return Err(match updated {
            Err(u) => format!("{u}; then {e}"),
            Ok(()) => e,
        });
    }
    let deb = fs::read_dir(&cache)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("powerpc-ibm-utils_") && n.ends_with(".deb"))
        })
        .ok_or("apt-get download left no powerpc-ibm-utils .deb")?;
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    if !out.status.success() || !root.join("usr/bin/amsstat").exists() {
        return Err(format!(
            "dpkg-deb -x failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(root)
}

/// What the kernel printed at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// `lparcfg` lines.
    pub lparcfg: Vec<String>,
    /// `meminfo` lines.
    pub meminfo: Vec<String>,
    /// `sysfs` lines.
    pub sysfs: Vec<String>,
    /// The kernel's own `amsstat` lines.
    pub amsstat: Vec<String>,
}

/// Takes the four outputs in one pipelined batch (no idle time between them).
pub fn snapshot(vm: &mut Qemu) -> Snapshot {
    let r = vm.oks(&["lparcfg", "meminfo", "sysfs", "amsstat"]);
    Snapshot {
        lparcfg: r[0].lines.clone(),
        meminfo: r[1].lines.clone(),
        sysfs: r[2].lines.clone(),
        amsstat: r[3].lines.clone(),
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Rebuilds the file tree amsstat reads under `root` (which is emptied first).
/// As on Linux, `/sys/bus/vio/devices/<addr>` are symbolic links to the device
/// directories (amsstat's `find` must not descend into them).
pub fn build_tree(root: &Path, s: &Snapshot, tool: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(root);
    write(
        &root.join("proc/ppc64/lparcfg"),
        &(s.lparcfg.join("\n") + "\n"),
    )?;
    write(&root.join("proc/meminfo"), &(s.meminfo.join("\n") + "\n"))?;
    // The kernel runs as a pseries LPAR (the platform line Linux prints there).
    write(&root.join("proc/cpuinfo"), "platform\t: pSeries\n")?;
    let platform =
        fs::read_to_string(tool.join("usr/sbin/pseries_platform")).map_err(|e| e.to_string())?;
    write(
        &root.join("usr/sbin/pseries_platform"),
        &rooted(&platform, root),
    )?;
    for line in &s.sysfs {
        let (path, value) = line
            .split_once('=')
            .ok_or_else(|| format!("bad sysfs line {line:?}"))?;
        let rel = path
            .strip_prefix('/')
            .ok_or_else(|| format!("bad sysfs path {path:?}"))?;
        if let Some(rest) = rel.strip_prefix("sys/bus/vio/devices/") {
            let (addr, file) = rest
                .split_once('/')
                .ok_or_else(|| format!("bad device path {path:?}"))?;
            let dev = root.join("sys/devices/vio").join(addr);
            write(&dev.join(file), &format!("{value}\n"))?;
            let link = root.join("sys/bus/vio/devices").join(addr);
            if fs::symlink_metadata(&link).is_err() {
                fs::create_dir_all(link.parent().unwrap()).map_err(|e| e.to_string())?;
                std::os::unix::fs::symlink(format!("../../../devices/vio/{addr}"), &link)
                    .map_err(|e| e.to_string())?;
            }
        } else {
            write(&root.join(rel), &format!("{value}\n"))?;
        }
    }
    Ok(())
}

/// The script's text with its absolute paths moved under `root`.
fn rooted(script: &str, root: &Path) -> String {
    let r = root.display().to_string();
    script
        .replace(
            "/usr/sbin/pseries_platform",
            &format!("{r}/usr/sbin/pseries_platform"),
        )
        .replace("/proc/", &format!("{r}/proc/"))
        .replace("/sys/", &format!("{r}/sys/"))
}

/// Runs the real amsstat against the tree at `root`; returns its output.
pub fn run_tool(tool: &Path, root: &Path) -> Result<String, String> {
    let script = fs::read_to_string(tool.join("usr/bin/amsstat")).map_err(|e| e.to_string())?;
    let path = root.join("amsstat.sh");
    write(&path, &rooted(&script, root))?;
    let out = Command::new("bash")
        .arg(&path)
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "amsstat exited {:?}: {text}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

/// The figures of an amsstat report, keyed by (section, device, row name).
pub fn figures(report: &str) -> BTreeMap<(String, String, String), i64> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    let mut device = String::new();
    for line in report.lines() {
        let t = line.trim_end();
        if !t.starts_with(' ') && t.ends_with(':') {
            section = t.trim_end_matches(':').to_string();
            device.clear();
            continue;
        }
        if t.starts_with("   ") && !t.starts_with("    ") && t.ends_with(':') {
            device = t.trim().trim_end_matches(':').to_string();
            continue;
        }
        let rows = crate::reply::parse_rows(&[t.to_string()]);
        for (k, v) in rows {
            out.insert((section.clone(), device.clone(), k), v);
        }
    }
    out
}

/// Compares the real tool's figures with the kernel's, both ways: every figure
/// either report prints must be in the other with the same value. Returns the
/// number of figures compared.
pub fn compare(real: &str, ours: &str) -> Result<usize, String> {
    let r = figures(real);
    let o = figures(ours);
    let mut problems = Vec::new();
    for (k, v) in &r {
        match o.get(k) {
            Some(x) if x == v => {}
            Some(x) => problems.push(format!("{k:?}: amsstat {v}, kernel {x}")),
            None => problems.push(format!("{k:?}: amsstat {v}, kernel has no such row")),
        }
    }
    for (k, x) in &o {
        if !r.contains_key(k) {
            problems.push(format!("{k:?}: kernel {x}, amsstat has no such row"));
        }
    }
    if problems.is_empty() {
        Ok(r.len())
    } else {
        Err(problems.join("\n"))
    }
}
