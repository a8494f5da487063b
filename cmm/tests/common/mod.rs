//! Test doubles shared by the integration tests and the bench: a fake hypervisor
//! with a scripted loan request and injectable failures, and a fake page memory.
//! Both share one page book, so the memory can tell when something touches a page
//! the hypervisor holds as Loaned.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use cmm::{FrameTable, Mm, Params, Region};
use hcall::{
    BackendKind, BatchError, CmoFaultStats, HStatus, HcallError, Hypervisor, MppData, MppXData,
    PageState, SetMppOutcome, Simulation,
};

/// What a page holds, as far as the fake memory knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Pattern(u64),
    Zero,
    Garbage,
}

/// The hypervisor's view of every page, and what each page holds.
#[derive(Debug, Default)]
pub struct PageBook {
    /// Page states; a page missing here is Active (the boot default).
    pub states: HashMap<u64, PageState>,
    pub loaned: u64,
    pub contents: HashMap<u64, Content>,
    /// Writes (fill, zero) to a page while it is Loaned: must stay 0.
    pub writes_to_loaned: u64,
    /// Reads of a page while it is Loaned (only poison-mode verify may).
    pub reads_of_loaned: u64,
    /// `note_access` on a Loaned page: must stay 0.
    pub touched_loaned: u64,
}

impl PageBook {
    pub fn state(&self, addr: u64) -> PageState {
        self.states.get(&addr).copied().unwrap_or(PageState::Active)
    }

    pub fn loaned_addrs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .states
            .iter()
            .filter(|(_, s)| **s == PageState::Loaned)
            .map(|(a, _)| *a)
            .collect();
        v.sort_unstable();
        v
    }
}

/// Where the fake's loan request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// H_GET_MPP returns this r9 as is.
    Bytes(i64),
    /// Like the pool model: ask for whatever brings the loan to this many pages.
    LoanPages(u64),
}

pub struct FakeHv {
    pub book: Rc<RefCell<PageBook>>,
    pub request: Request,
    /// The next n H_GET_MPP calls fail with `fail_status`.
    pub fail_get_mpp: u32,
    /// The figures H_GET_MPP returns besides the loan request (a lying
    /// hypervisor's contradictions go here).
    pub mpp: MppData,
    /// Pages whose return (Loaned → Active or Unused) is refused with
    /// H_PARAMETER although their loan was accepted.
    pub refuse_return: BTreeSet<u64>,
    /// The next n H_PAGE_INIT state changes fail with `fail_status`...
    pub fail_page_state: u32,
    /// ...once this many more have succeeded (a batch then fails part-way).
    pub pass_before_fail: u32,
    pub fail_status: HStatus,
    /// On Loaned → Active, the page reads back as zeros (the hypervisor reused it).
    pub drop_contents_on_reclaim: bool,
    pub get_mpp_calls: u64,
    pub page_state_calls: u64,
    /// What `wait_report` does: a test's fake reporting device, if any.
    #[allow(clippy::type_complexity)]
    pub report_wait: Option<Box<dyn FnMut() -> Option<bool>>>,
    /// `wait_report` calls.
    pub report_waits: u64,
}

impl FakeHv {
    pub fn new(book: Rc<RefCell<PageBook>>) -> Self {
        FakeHv {
            book,
            request: Request::Bytes(0),
            fail_get_mpp: 0,
            mpp: MppData::default(),
            refuse_return: BTreeSet::new(),
            fail_page_state: 0,
            pass_before_fail: 0,
            fail_status: HStatus::Hardware,
            drop_contents_on_reclaim: false,
            get_mpp_calls: 0,
            page_state_calls: 0,
            report_wait: None,
            report_waits: 0,
        }
    }

    /// The r9 value H_GET_MPP would return now.
    pub fn loan_request(&self) -> i64 {
        match self.request {
            Request::Bytes(b) => b,
            Request::LoanPages(want) => {
                let have = self.book.borrow().loaned;
                let delta = i128::from(want) - i128::from(have);
                i64::try_from(delta * 4096).unwrap_or(0)
            }
        }
    }
}

fn err(call: &'static str, status: HStatus) -> HcallError {
    HcallError { call, status }
}

impl Hypervisor for FakeHv {
    fn get_mpp(&mut self) -> Result<MppData, HcallError> {
        self.get_mpp_calls += 1;
        if self.fail_get_mpp > 0 {
            self.fail_get_mpp -= 1;
            return Err(err("H_GET_MPP", self.fail_status));
        }
        Ok(MppData {
            loan_request: self.loan_request(),
            ..self.mpp
        })
    }

    fn get_mpp_x(&mut self) -> Result<MppXData, HcallError> {
        Err(err("H_GET_MPP_X", HStatus::Function))
    }

    fn set_mpp(&mut self, _: u64, _: u8) -> Result<SetMppOutcome, HcallError> {
        Err(err("H_SET_MPP", HStatus::Function))
    }

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.page_state_calls += 1;
        assert_eq!(addr % 4096, 0, "unaligned H_PAGE_INIT");
        if self.fail_page_state > 0 {
            if self.pass_before_fail > 0 {
                self.pass_before_fail -= 1;
            } else {
                self.fail_page_state -= 1;
                return Err(err("H_PAGE_INIT", self.fail_status));
            }
        }
        let mut book = self.book.borrow_mut();
        let old = book.state(addr);
        if old == PageState::Loaned
            && state != PageState::Loaned
            && self.refuse_return.contains(&addr)
        {
            return Err(err("H_PAGE_INIT", HStatus::Parameter));
        }
        if old == PageState::Loaned && state != PageState::Loaned {
            book.loaned -= 1;
            if self.drop_contents_on_reclaim {
                book.contents.insert(addr, Content::Zero);
            }
        }
        if old != PageState::Loaned && state == PageState::Loaned {
            book.loaned += 1;
        }
        book.states.insert(addr, state);
        Ok(())
    }

    fn zero_page(&mut self, addr: u64) -> Result<(), HcallError> {
        self.book.borrow_mut().contents.insert(addr, Content::Zero);
        Ok(())
    }

    fn put_tce(&mut self, _: u32, _: u64, _: u64) -> Result<(), HcallError> {
        Err(err("H_PUT_TCE", HStatus::Function))
    }

    fn get_tce(&mut self, _: u32, _: u64) -> Result<u64, HcallError> {
        Err(err("H_GET_TCE", HStatus::Function))
    }

    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        hcall::hypervisor::set_each(self, addrs, state)
    }
}

impl Simulation for FakeHv {
    fn kind(&self) -> BackendKind {
        BackendKind::Model
    }

    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        Some(CmoFaultStats::default())
    }

    fn advance(&mut self, _now_us: u64) {}

    fn note_access(&mut self, addr: u64) {
        let mut book = self.book.borrow_mut();
        if book.state(addr) == PageState::Loaned {
            book.touched_loaned += 1;
        }
    }

    fn wait_report(&mut self) -> Option<bool> {
        self.report_waits += 1;
        self.report_wait.as_mut().and_then(|f| f())
    }
}

pub struct FakeMem {
    pub book: Rc<RefCell<PageBook>>,
}

impl FakeMem {
    fn write(&mut self, addr: u64, c: Content) {
        let mut book = self.book.borrow_mut();
        if book.state(addr) == PageState::Loaned {
            book.writes_to_loaned += 1;
        }
        book.contents.insert(addr, c);
    }

    fn read(&self, addr: u64) -> Content {
        let mut book = self.book.borrow_mut();
        if book.state(addr) == PageState::Loaned {
            book.reads_of_loaned += 1;
        }
        // Memory nobody wrote since boot holds whatever firmware left.
        book.contents
            .get(&addr)
            .copied()
            .unwrap_or(Content::Garbage)
    }

    /// A stray write that bypasses the kernel (to plant corruption).
    pub fn scribble(&self, addr: u64) {
        self.book
            .borrow_mut()
            .contents
            .insert(addr, Content::Garbage);
    }
}

// The fake keeps page contents in a map and touches no memory at any address it
// is given.
impl cmm::PageMemory for FakeMem {
    fn fill(&mut self, addr: u64, seed: u64) {
        self.write(addr, Content::Pattern(seed));
    }

    fn check(&self, addr: u64, seed: u64) -> bool {
        self.read(addr) == Content::Pattern(seed)
    }

    fn is_zero(&self, addr: u64) -> bool {
        self.read(addr) == Content::Zero
    }

    fn zero(&mut self, addr: u64) {
        self.write(addr, Content::Zero);
    }
}

impl World {
    /// What a user of every allocated page would check: a kernel page reads as
    /// zeros (unless its holder wrote it, which these tests never do), a workload
    /// page holds its pattern; never what the page held before it was freed,
    /// loaned or poisoned.
    pub fn check_contents(&self, kernel_pages: &[u64]) {
        let book = self.hv.book.borrow();
        for &addr in kernel_pages {
            assert_eq!(
                book.contents.get(&addr),
                Some(&Content::Zero),
                "kernel page {addr:#x}"
            );
        }
        let held = self
            .mm
            .frames()
            .iter(cmm::FrameSet::Workload)
            .chain(self.mm.frames().iter(cmm::FrameSet::Cache));
        for pfn in held {
            let addr = pfn * 4096;
            assert_eq!(
                book.contents.get(&addr),
                Some(&Content::Pattern(cmm::memory::workload_seed(addr))),
                "workload page {addr:#x}"
            );
        }
    }
}

/// A fake machine: memory manager, hypervisor and memory.
pub struct World {
    pub mm: Mm,
    pub hv: FakeHv,
    pub mem: FakeMem,
    pub now_ms: u64,
    /// Poison mode was on at some point (loaned pages may have been read).
    pub poison_ever: bool,
}

impl World {
    /// `frames` frames of RAM from frame 0, the first `reserved` reserved, with
    /// `min_mem_mb` as floor and a 1 ms poll interval.
    pub fn new(frames: u64, reserved: u64, min_mem_mb: u64) -> World {
        let table = FrameTable::new(
            &[Region {
                start_pfn: 0,
                count: frames,
            }],
            &[Region {
                start_pfn: 0,
                count: reserved,
            }],
        )
        .expect("frame table");
        let mut params = Params::default();
        params.set("min_mem_mb", &min_mem_mb.to_string()).unwrap();
        params.set("delay_ms", "1").unwrap();
        let book = Rc::new(RefCell::new(PageBook::default()));
        World {
            mm: Mm::new(table, params),
            hv: FakeHv::new(book.clone()),
            mem: FakeMem { book },
            now_ms: 0,
            poison_ever: false,
        }
    }

    /// Advances time past the poll interval and runs one balloon round.
    pub fn poll(&mut self) -> cmm::StepReport {
        self.now_ms += self.mm.params().delay_ms();
        self.mm.step(self.now_ms, &mut self.hv, &mut self.mem)
    }

    pub fn set(&mut self, name: &str, value: &str) -> Result<(), cmm::CmmError> {
        self.mm
            .set_param(name, value, &mut self.hv, &mut self.mem)
            .map(|_| ())?;
        self.poison_ever |= self.mm.params().poison();
        Ok(())
    }

    pub fn alloc(&mut self, pages: u64, w: cmm::Workload) -> Result<u64, cmm::CmmError> {
        self.mm
            .alloc_workload(pages, w, &mut self.hv, &mut self.mem)
    }

    pub fn free(&mut self, pages: Option<u64>, w: cmm::Workload) -> Result<u64, cmm::CmmError> {
        self.mm.free_workload(pages, w, &mut self.hv)
    }

    pub fn verify(&mut self) -> cmm::VerifyReport {
        self.mm.verify(&mut self.hv, &self.mem)
    }

    pub fn loaned(&self) -> u64 {
        self.mm.stats().loaned_pages
    }

    pub fn target(&self) -> u64 {
        self.mm.stats().loaned_target_pages
    }

    /// The checks that must hold after any operation.
    pub fn check_invariants(&self) {
        let c = self.mm.frames().counts();
        assert_eq!(c.total, c.free + c.used + c.loaned + c.reporting, "{c:?}");
        assert_eq!(
            self.mm.stats().loaned_pages,
            c.loaned,
            "stats mirror the table"
        );
        // Every frame in exactly one state, and per-owner counts match.
        let mut free = 0;
        let mut loaned = 0;
        let mut used = 0;
        let mut workload = 0;
        let mut cache = 0;
        let mut reporting = 0;
        for pfn in self.mm.frames().all_frames() {
            match self.mm.frames().state(pfn).unwrap() {
                cmm::FrameState::Free => free += 1,
                cmm::FrameState::Reporting => reporting += 1,
                cmm::FrameState::Loaned => loaned += 1,
                cmm::FrameState::Reserved => {}
                cmm::FrameState::Used(o) => {
                    used += 1;
                    match o {
                        cmm::Owner::Workload => workload += 1,
                        cmm::Owner::Cache => cache += 1,
                        cmm::Owner::Kernel => {}
                    }
                }
            }
        }
        assert_eq!(
            (free, loaned, used, reporting),
            (c.free, c.loaned, c.used, c.reporting)
        );
        assert_eq!(self.mm.frames().check(), Ok(()));
        assert_eq!((workload, cache), (c.workload, c.cache));
        // The hypervisor's Loaned pages are exactly the balloon's loaned frames.
        let table: Vec<u64> = self
            .mm
            .frames()
            .iter(cmm::FrameSet::Loaned)
            .map(cmm::units::pfn_to_addr)
            .collect();
        let book = self.hv.book.borrow();
        assert_eq!(
            book.loaned_addrs(),
            table,
            "hypervisor and balloon disagree"
        );
        assert_eq!(book.writes_to_loaned, 0, "a loaned page was written");
        if self.mm.stats().hint_failures == 0 {
            for pfn in self.mm.frames().iter(cmm::FrameSet::Free) {
                assert_ne!(book.state(pfn * 4096), PageState::Loaned, "free {pfn}");
            }
            let used =
                self.mm.frames().all_frames().filter(|&p| {
                    matches!(self.mm.frames().state(p), Some(cmm::FrameState::Used(_)))
                });
            for pfn in used {
                assert_eq!(book.state(pfn * 4096), PageState::Active, "used {pfn}");
            }
        }
        assert_eq!(book.touched_loaned, 0, "a loaned page was touched");
        if !self.poison_ever {
            assert_eq!(book.reads_of_loaned, 0, "a loaned page was read");
        }
    }
}
