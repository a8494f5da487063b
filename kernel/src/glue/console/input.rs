//! Console input: the lock-free ring ([`kernel::text::input`]) the console device
//! (`drivers::vty`) fills, from its interrupt or its timed poll with interrupts
//! masked (so there is only ever one producer at a time). The shell pops bytes in
//! order.

use kernel::text::input::InputRing;

static RING: InputRing = InputRing::new();

/// Fills the ring from the device: `get` reads up to 16 waiting bytes and says how
/// many; called until the device is empty (or the ring nearly full). The caller
/// is the only producer (interrupt context, or interrupts masked).
pub fn fill(get: impl FnMut(&mut [u8; 16]) -> usize) {
    RING.drain(get);
}

/// The next input byte. When the ring had filled up, the device may still hold
/// bytes that will raise no interrupt: drain it now.
pub fn pop() -> Option<u8> {
    let b = RING.pop();
    if RING.backlog() {
        crate::drivers::vty::poll();
    }
    b
}

/// True when bytes are waiting in the ring.
pub fn waiting() -> bool {
    !RING.is_empty()
}

/// True while a Ctrl-C is unread: long commands stop with `error: interrupted`.
pub fn interrupt_pending() -> bool {
    RING.interrupt_pending()
}
