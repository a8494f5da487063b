//! `make bench-linux`: lpar-cmm next to Linux on the same QEMU. The
//! Debian ppc64el kernel and `busybox-static` are fetched through the Debian
//! archive of this machine's apt sources and cached under `target/bench-linux/`
//! (`lpar_cmm_tests::linux`); a small initramfs loads Linux's own
//! `virtio_balloon`. Linux and lpar-cmm then run alternately, [`PAIRS`] times,
//! each with `-m 1G` and `-device virtio-balloon-pci,free-page-reporting=on`
//! (Linux boots through SLOF, which it needs; lpar-cmm through the boot ROM),
//! and the figures are printed side by side as min–max:
//!
//! - QEMU start → the prompt;
//! - idle host CPU over 5 s at the prompt;
//! - VmRSS before, after touching 512 MiB (lpar-cmm `alloc 512M`, Linux a
//!   512 MiB file in tmpfs), the time after freeing it until 90 % of that is
//!   back with the host and until VmRSS is within 16 MiB of before (at most
//!   30 s), and VmRSS then;
//! - QMP `balloon` 1 GiB → 768 MiB → 1 GiB → 256 MiB → 1 GiB, each step until
//!   `query-balloon` shows it (lpar-cmm's floor lowered to 64 MiB).
//!
//! Linux's median return times are written to
//! `target/bench-linux/linux-figures.txt` for `make bench` to compare with.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lpar_cmm_tests::linux::{prepare, LinuxGuest};
use lpar_cmm_tests::qmp::Qmp;
use lpar_cmm_tests::{workspace_root, Qemu};

const PAIRS: usize = 3;
const MIB: u64 = 1 << 20;
const STEPS: [u64; 4] = [768, 1024, 256, 1024];

#[derive(Default)]
struct Figures {
    ready_s: Vec<f64>,
    idle_percent: Vec<f64>,
    rss_before_mib: Vec<f64>,
    rss_touched_mib: Vec<f64>,
    rss_return_s: Vec<f64>,
    rss_after_free_mib: Vec<f64>,
    rss_90_back_s: Vec<f64>,
    steps_s: [Vec<f64>; 4],
}

fn main() {
    let dir = workspace_root().join("target/bench-linux");
    let guest = match prepare(&dir) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("bench-linux: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "bench-linux: {} ({}), initramfs {}",
        guest.package,
        guest.kernel.display(),
        guest.initrd.display()
    );
    let mut linux = Figures::default();
    let mut ours = Figures::default();
    for pair in 0..PAIRS {
        eprintln!("bench-linux: pair {} of {PAIRS}", pair + 1);
        run(Some(&guest), &mut linux, &dir);
        run(None, &mut ours, &dir);
    }
    print_table(&ours, &linux);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let _ = std::fs::write(
        dir.join("linux-figures.txt"),
        format!(
            "rss_return_s {}\nrss_90pct_back_s {}\nready_s {}\n",
            median(&linux.rss_return_s),
            median(&linux.rss_90_back_s),
            median(&linux.ready_s)
        ),
    );
}

/// One boot of Linux (`Some`) or lpar-cmm (`None`), every figure measured once.
fn run(linux: Option<&LinuxGuest>, f: &mut Figures, dir: &std::path::Path) {
    let sock: PathBuf = dir.join(format!("qmp-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let mut b = Qemu::builder()
        .mem("1G")
        // Two CPUs for both guests: lpar-cmm's CPU 1 makes the balloon's
        // notifies while CPU 0 fills the next buffers (docs/virtio-balloon.md).
        .args([
            "-smp",
            "2",
            "-device",
            "virtio-balloon-pci,free-page-reporting=on",
        ])
        .qmp(&sock)
        .timeout(Duration::from_secs(900))
        .reply_timeout(Duration::from_secs(300));
    b = match linux {
        Some(g) => b
            .linux(g.kernel.clone(), g.initrd.clone())
            .append("console=hvc0 quiet"),
        None => b.append("cmm.min_mem_mb=64"),
    };
    let mut vm = b.boot();
    f.ready_s
        .push(vm.boot_time().map_or(f64::NAN, |d| d.as_secs_f64()));

    std::thread::sleep(Duration::from_secs(1));
    let c0 = vm.cpu_time().unwrap_or_default();
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let used = vm.cpu_time().unwrap_or_default().saturating_sub(c0);
    f.idle_percent
        .push(100.0 * used.as_secs_f64() / w0.elapsed().as_secs_f64());

    // Free page reporting: a settled start, 512 MiB touched, then freed.
    settle_rss(&vm);
    let before = vm.vm_rss_kb();
    match linux {
        Some(_) => {
            vm.sh("dd if=/dev/zero of=/mnt/work bs=1M count=512 2>/dev/null");
        }
        None => {
            vm.ok("alloc 512M");
        }
    }
    let touched = vm.vm_rss_kb();
    match linux {
        Some(_) => {
            vm.sh("rm /mnt/work");
        }
        None => {
            vm.ok("free all");
        }
    }
    // Two times: until 90 % of what the touch added is back with the host,
    // and until VmRSS is within 16 MiB of where it started.
    let ninety = touched.saturating_sub((touched.saturating_sub(before)) * 9 / 10);
    let t0 = Instant::now();
    let (mut back, mut back90) = (None, None);
    while t0.elapsed() < Duration::from_secs(30) {
        let rss = vm.vm_rss_kb();
        if back90.is_none() && rss <= ninety {
            back90 = Some(t0.elapsed().as_secs_f64());
        }
        if rss <= before + 16 * 1024 {
            back = Some(t0.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f.rss_90_back_s.push(back90.unwrap_or(f64::NAN));
    f.rss_before_mib.push(before as f64 / 1024.0);
    f.rss_touched_mib.push(touched as f64 / 1024.0);
    f.rss_return_s.push(back.unwrap_or(f64::NAN));
    f.rss_after_free_mib.push(vm.vm_rss_kb() as f64 / 1024.0);

    let mut qmp = Qmp::connect(&sock);
    std::thread::sleep(Duration::from_millis(500));
    for (i, &to) in STEPS.iter().enumerate() {
        let t = qmp
            .follow_balloon(to * MIB, Duration::from_secs(60))
            .map_or(f64::NAN, |d| d.as_secs_f64());
        f.steps_s[i].push(t);
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(qmp);
    drop(vm);
    let _ = std::fs::remove_file(&sock);
}

/// Waits (at most 15 s) until VmRSS moved by less than 1 MiB over half a second.
fn settle_rss(vm: &Qemu) {
    let t0 = Instant::now();
    let mut last = vm.vm_rss_kb();
    while t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(500));
        let now = vm.vm_rss_kb();
        if now.abs_diff(last) < 1024 {
            return;
        }
        last = now;
    }
}

/// `min–max` of the runs that gave a figure; runs that gave none (NaN: not
/// back within 30 s, a step that timed out) are counted beside it.
fn span(v: &[f64], digits: usize) -> String {
    let ok: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    let missing = v.len() - ok.len();
    if ok.is_empty() {
        return format!("none of {}", v.len());
    }
    let lo = ok.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ok.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if missing > 0 {
        format!(
            "{lo:.digits$}–{hi:.digits$} ({missing} of {} none)",
            v.len()
        )
    } else {
        format!("{lo:.digits$}–{hi:.digits$}")
    }
}

fn print_table(ours: &Figures, linux: &Figures) {
    println!(
        "lpar-cmm vs Linux, same QEMU, -m 1G -smp 2, virtio-balloon-pci,free-page-reporting=on, {PAIRS} pairs (min–max):"
    );
    println!("{:<36} {:<22} Linux", "figure", "lpar-cmm");
    let line = |name: &str, a: &[f64], b: &[f64], d: usize| {
        println!("{name:<36} {:<22} {}", span(a, d), span(b, d));
    };
    line("start_to_prompt_s", &ours.ready_s, &linux.ready_s, 3);
    line(
        "idle_host_cpu_percent",
        &ours.idle_percent,
        &linux.idle_percent,
        2,
    );
    line(
        "vm_rss_before_mib",
        &ours.rss_before_mib,
        &linux.rss_before_mib,
        0,
    );
    line(
        "vm_rss_after_touching_512m_mib",
        &ours.rss_touched_mib,
        &linux.rss_touched_mib,
        0,
    );
    line(
        "rss_back_within_16m_after_free_s",
        &ours.rss_return_s,
        &linux.rss_return_s,
        3,
    );
    line(
        "rss_90pct_back_after_free_s",
        &ours.rss_90_back_s,
        &linux.rss_90_back_s,
        3,
    );
    line(
        "vm_rss_when_back_or_after_30s_mib",
        &ours.rss_after_free_mib,
        &linux.rss_after_free_mib,
        0,
    );
    let mut from = 1024;
    for (i, to) in STEPS.iter().enumerate() {
        line(
            &format!("qmp_balloon_{from}_to_{to}_s"),
            &ours.steps_s[i],
            &linux.steps_s[i],
            3,
        );
        from = *to;
    }
}
