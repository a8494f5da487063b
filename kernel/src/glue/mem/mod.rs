//! Physical memory: the frame table over all RAM the tree reports minus the kernel
//! image, vectors, boot ROM, heap, stacks and the tree's reserved ranges; and
//! [`PhysMemory`], the only code that reads and writes page contents.

pub mod vpa;

use alloc::vec::Vec;
use cmm::frames::managed_regions;
use cmm::memory::{pattern_word, WORDS_PER_PAGE};
use cmm::{FrameTable, PageMemory, Region};
use hcall::page::PAGE_SIZE;
use hcall::raw::sc1::Sc1;
use hcall::Phyp;
use kernel::devtree::MemRange;

/// The real hypervisor the kernel's backend is built over (`hv::detect`): `Phyp`
/// over `sc 1`, for H_GET_MPP at detection and for the page and TCE calls the
/// pool model passes through.
pub fn real_hypervisor() -> Phyp<Sc1> {
    // SAFETY: the backend built over this goes into `System` and is reached
    // only through `cmm::Mm` and the VIO accounting: the balloon loans, returns
    // and zeroes only frames of the table `frame_table` builds from RAM outside
    // the image and every reserved range, a frame only while it is free (and it
    // touches a loaned frame only after making it Active again); a TCE names a
    // frame the VIO bus allocated for the device.
    unsafe { Phyp::new(Sc1::new()) }
}

/// Which frames are loaned, for the paths that cannot borrow the system (the
/// fault report, os-term): a shared view the frame table keeps in step.
static LOANED: spin::Once<cmm::frames::LoanedView> = spin::Once::new();

/// Shares the frame table's loaned view with the fault and exit paths (once).
pub fn set_loaned_view(frames: &FrameTable) {
    LOANED.call_once(|| frames.loaned_view());
}

/// The loaned view, once the system exists.
pub fn loaned_view() -> Option<&'static cmm::frames::LoanedView> {
    LOANED.get()
}

/// On the way out after a fatal error, hands every loaned page straight back to
/// the hypervisor (H_PAGE_INIT, Active), one call each and no book-keeping.
/// Returns how many it took back and how many it refused.
pub fn give_back_on_exit(view: &cmm::frames::LoanedView) -> (u64, u64) {
    let (mut back, mut refused) = (0u64, 0u64);
    for pfn in view.pfns() {
        let addr = pfn.saturating_mul(PAGE_SIZE);
        // SAFETY: the kernel is terminating with every other CPU stopped; nothing
        // touches these pages again, and making a loaned page Active only gives it
        // back to the partition.
        let r = unsafe {
            hcall::calls::set_page_state(&mut Sc1::new(), addr, hcall::PageState::Active)
        };
        if r.is_ok() {
            back += 1;
        } else {
            refused += 1;
        }
    }
    (back, refused)
}

/// The largest device tree blob accepted.
const MAX_FDT: usize = 1 << 20;

/// True when `addr` (r3 at entry) points at a flattened device tree's magic.
pub fn looks_like_fdt(addr: u64) -> bool {
    if !kernel::devtree::fdt::plausible_blob_address(addr) {
        return false;
    }
    // SAFETY: a non-zero, aligned r3 below 1 TiB from the boot ROM points into
    // RAM; reading 4 bytes of it in real mode is harmless even when it is not a
    // blob.
    let raw = unsafe { core::ptr::read_volatile(addr as usize as *const u32) };
    kernel::devtree::fdt::is_magic_word(raw)
}

/// Copies the device tree blob at `addr` (r3 at entry) to the heap.
pub fn copy_fdt(addr: u64) -> Result<Vec<u8>, &'static str> {
    if !looks_like_fdt(addr) {
        return Err("r3 does not point at a device tree");
    }
    let ptr = addr as usize as *const u8;
    // SAFETY: the magic is at `addr` (checked above): the 40-byte header of a
    // blob the boot ROM placed in RAM.
    let header = unsafe { core::slice::from_raw_parts(ptr, kernel::devtree::fdt::HEADER_LEN) };
    let size = kernel::devtree::fdt::blob_size(header, MAX_FDT)?;
    // SAFETY: the header says the blob is `size` bytes long, and QEMU placed it in RAM.
    let all = unsafe { core::slice::from_raw_parts(ptr, size) };
    Ok(all.to_vec())
}

/// The RAM regions and the reserved ones (everything below the end of the image
/// included) that the frame table and [`PhysMemory`] are built from.
fn regions(ram: &[MemRange], reserved: &[MemRange]) -> (Vec<Region>, Vec<Region>) {
    // With translation off only the RMA is reachable (docs/real-mode-area.md);
    // with it on, the linear map covers all RAM.
    let (ram, above) = if crate::glue::mmu::is_on() {
        (ram.to_vec(), 0)
    } else {
        crate::glue::rma::current().clip(ram)
    };
    if above > 0 {
        log::info!(
            "{} MiB of RAM above the RMA left unused (reachable only with translation on)",
            above >> 20
        );
    }
    let ram: Vec<Region> = ram
        .iter()
        .map(|m| Region::inside_bytes(m.base, m.size))
        .collect();
    let mut res: Vec<Region> = reserved
        .iter()
        .map(|m| Region::covering_bytes(m.base, m.size))
        .collect();
    res.push(Region::covering_bytes(0, crate::glue::image::kernel_end()));
    (ram, res)
}

/// Builds the frame table (RAM minus everything below the end of the image and
/// minus the reserved ranges) and the page access limited to the same frames.
pub fn frame_table(
    ram: &[MemRange],
    reserved: &[MemRange],
) -> Result<(FrameTable, PhysMemory), cmm::CmmError> {
    let (ram, res) = regions(ram, reserved);
    let table = FrameTable::new(&ram, &res)?;
    let managed = managed_regions(&ram, &res);
    Ok((table, PhysMemory { managed }))
}

/// Page contents by real address (in real mode, or through the linear map once
/// translation is on); only the frames the frame table manages. Each CPU of `stress` has its own
/// copy (it holds only the list of managed regions).
#[derive(Clone)]
pub struct PhysMemory {
    /// The managed frames (RAM minus the image, heap, stacks and reserved ranges).
    managed: Vec<Region>,
}

impl PhysMemory {
    /// True if `addr` is the start of a managed frame.
    fn is_managed(&self, addr: u64) -> bool {
        let pfn = addr / PAGE_SIZE;
        addr.is_multiple_of(PAGE_SIZE)
            && self
                .managed
                .iter()
                .any(|r| pfn >= r.start_pfn && pfn < r.end_pfn())
    }
}

/// The 512 words of the frame at `addr`.
///
/// # Safety
/// `addr` must be a 4 KiB-aligned RAM frame that the frame table manages (never
/// the kernel image or heap), and no other reference to it may be live.
unsafe fn words<'a>(addr: u64) -> &'a mut [u64] {
    if !crate::glue::mmu::is_on() {
        crate::glue::rma::check(addr, PAGE_SIZE, "page contents");
    }
    // SAFETY: forwarded from the caller: 4 KiB of RAM, aligned, unaliased.
    unsafe { core::slice::from_raw_parts_mut(addr as usize as *mut u64, WORDS_PER_PAGE as usize) }
}

// The contract of `PageMemory` (any address, from safe code): every access first
// checks `is_managed`, so an address that is not the start of a frame the frame
// table manages is refused. Those frames hold nothing else the kernel references
// (the table was built with the image, heap, stacks and the tree's reserved
// ranges taken out), each is reachable at its address (real mode, or the linear
// map), and no reference into one outlives the call that makes it.
impl PageMemory for PhysMemory {
    fn fill(&mut self, addr: u64, seed: u64) {
        if self.is_managed(addr) {
            // SAFETY: a managed frame (checked above); see the impl's comment.
            let w = unsafe { words(addr) };
            for (i, x) in w.iter_mut().enumerate() {
                *x = pattern_word(seed, i as u64);
            }
        }
    }

    fn check(&self, addr: u64, seed: u64) -> bool {
        if !self.is_managed(addr) {
            return false;
        }
        // SAFETY: a managed frame (checked above); only read.
        let w = unsafe { words(addr) };
        w.iter()
            .enumerate()
            .all(|(i, &x)| x == pattern_word(seed, i as u64))
    }

    fn is_zero(&self, addr: u64) -> bool {
        if !self.is_managed(addr) {
            return false;
        }
        // SAFETY: a managed frame (checked above); only read.
        let w = unsafe { words(addr) };
        w.iter().all(|&x| x == 0)
    }

    /// Writes zeros only where the page is not already zero: reading is cheap,
    /// and a page that was never written (or that the hypervisor dropped while it
    /// was loaned) stays untouched instead of being faulted in just to be cleared.
    fn zero(&mut self, addr: u64) {
        if self.is_managed(addr) {
            // SAFETY: a managed frame (checked above).
            let w = unsafe { words(addr) };
            if w.iter().any(|&x| x != 0) {
                w.fill(0);
            }
        }
    }
}
