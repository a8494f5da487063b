//! The kernel heap for small objects: `linked_list_allocator` over a static area.

use linked_list_allocator::LockedHeap;

/// Size of the heap in bytes.
pub const HEAP_SIZE: usize = 16 << 20;

/// Page-aligned (`align` takes only a literal; the assertion below holds it to
/// the page size).
#[repr(C, align(4096))]
struct Area([u8; HEAP_SIZE]);
const _: () = assert!(core::mem::align_of::<Area>() == hcall::page::PAGE_BYTES);

static mut AREA: Area = Area([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the static area to the allocator. Call once, before any allocation.
pub fn init() {
    // SAFETY: called once at boot before any allocation; AREA is used by nothing
    // else, so the allocator gets exclusive ownership of it.
    unsafe {
        let start = core::ptr::addr_of_mut!(AREA).cast::<u8>();
        ALLOCATOR.lock().init(start, HEAP_SIZE);
    }
}

/// The heap area's first byte and the byte after it.
pub fn area() -> (u64, u64) {
    let start = core::ptr::addr_of!(AREA) as u64;
    (start, start + HEAP_SIZE as u64)
}

/// (used, free) bytes of the heap.
pub fn usage() -> (usize, usize) {
    let h = ALLOCATOR.lock();
    (h.used(), h.free())
}
