//! Scenario control of the model: the pool size, the other partitions, the loan
//! target and failure injection, with the errors they return.
//!
//! Every change is validated first and either fully applied or refused with a
//! [`ModelError`] leaving the model as it was. After a change the shares are
//! recomputed, allotments are forced within the new limits at once (the hypervisor
//! takes memory back immediately, lowest weight first) and self is paged out if the
//! pool is over-committed.

use alloc::string::{String, ToString};
use core::fmt;

use super::{bytes, Injection, LoanMode, Lpar, LparParams, PoolModel, DEFAULT_WEIGHT};
use super::{MAX_NAME_LEN, MAX_PARTITIONS, OTHER_DEFAULT_ENTITLED};
use hcall::page::PAGE_SIZE;
use hcall::raw::RawHcall;
use hcall::status::HStatus;

/// A kind of call whose failures can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    /// H_GET_MPP.
    GetMpp,
    /// H_GET_MPP_X.
    GetMppX,
    /// H_SET_MPP.
    SetMpp,
    /// H_PAGE_INIT (page-state changes and zeroing).
    PageInit,
    /// H_PUT_TCE.
    PutTce,
    /// H_GET_TCE.
    GetTce,
}

impl FailKind {
    /// Every kind.
    pub const ALL: [FailKind; 6] = [
        FailKind::GetMpp,
        FailKind::GetMppX,
        FailKind::SetMpp,
        FailKind::PageInit,
        FailKind::PutTce,
        FailKind::GetTce,
    ];

    /// The console name: `get_mpp`, `get_mpp_x`, `set_mpp`, `page_init`, `put_tce`,
    /// `get_tce`.
    pub fn name(self) -> &'static str {
        match self {
            FailKind::GetMpp => "get_mpp",
            FailKind::GetMppX => "get_mpp_x",
            FailKind::SetMpp => "set_mpp",
            FailKind::PageInit => "page_init",
            FailKind::PutTce => "put_tce",
            FailKind::GetTce => "get_tce",
        }
    }

    /// The PAPR name of the call, as it appears in [`hcall::HcallError::call`].
    pub fn hcall(self) -> &'static str {
        match self {
            FailKind::GetMpp => "H_GET_MPP",
            FailKind::GetMppX => "H_GET_MPP_X",
            FailKind::SetMpp => "H_SET_MPP",
            FailKind::PageInit => "H_PAGE_INIT",
            FailKind::PutTce => "H_PUT_TCE",
            FailKind::GetTce => "H_GET_TCE",
        }
    }

    /// Parses a console name or a PAPR name (`page_init`, `H_PAGE_INIT`; any case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s) || k.hcall().eq_ignore_ascii_case(s))
    }

    pub(super) fn index(self) -> usize {
        match self {
            FailKind::GetMpp => 0,
            FailKind::GetMppX => 1,
            FailKind::SetMpp => 2,
            FailKind::PageInit => 3,
            FailKind::PutTce => 4,
            FailKind::GetTce => 5,
        }
    }
}

/// Why the model refused a change or a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A memory weight above 255.
    BadWeight(u64),
    /// A size that must not be zero was.
    ZeroSize(&'static str),
    /// A size that must be whole 4 KiB pages is not.
    NotPageMultiple {
        /// Which size.
        what: &'static str,
        /// The value given.
        bytes: u64,
    },
    /// The pool would be smaller than the sum of the entitlements.
    PoolTooSmall {
        /// Pool size (bytes).
        pool: u64,
        /// Sum of entitlements (bytes).
        entitled: u64,
    },
    /// An entitlement above the partition's memory.
    EntitlementAboveMemory {
        /// Entitlement (bytes).
        entitled: u64,
        /// Memory (bytes).
        mem: u64,
    },
    /// A loan target above this partition's memory.
    TargetAboveMemory {
        /// Target (bytes).
        target: u64,
        /// Memory (bytes).
        mem: u64,
    },
    /// A partition with this name exists.
    DuplicateName(String),
    /// No partition has this name.
    UnknownName(String),
    /// Not a usable partition name (1-32 of `A-Za-z0-9_.-`, not `self`).
    BadName(String),
    /// Already [`MAX_PARTITIONS`] other partitions.
    TooManyPartitions,
    /// A required `key=` is missing.
    MissingKey(&'static str),
    /// An unknown `key=`, or an argument that is not `key=value`.
    UnknownKey(String),
    /// A number or size that does not parse, or is beyond what the command takes.
    BadNumber {
        /// What was typed.
        value: String,
        /// Why it was refused, in the console's words.
        reason: lpar_units::NumberError,
    },
    /// Not a call whose failures can be injected.
    UnknownHcall(String),
    /// Not a status name or number.
    BadStatus(String),
    /// H_SUCCESS cannot be injected.
    SuccessNotInjectable,
    /// The page array could not be allocated.
    OutOfMemory {
        /// Pages asked for.
        pages: u64,
    },
    /// Wrong command shape; the usage text.
    Usage(&'static str),
    /// `hv host` without a virtio balloon behind the model.
    NeedsDevice,
    /// The output sink failed.
    Output,
}

impl ModelError {
    /// [`ModelError::BadNumber`] for the text `value`.
    pub fn bad_number(value: &str, reason: lpar_units::NumberError) -> ModelError {
        ModelError::BadNumber {
            value: value.to_string(),
            reason,
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::BadWeight(w) => write!(f, "weight {w} out of range 0-255"),
            ModelError::ZeroSize(what) => write!(f, "{what} must not be zero"),
            ModelError::NotPageMultiple { what, bytes } => {
                write!(f, "{what} {bytes} is not a multiple of 4 KiB")
            }
            ModelError::PoolTooSmall { pool, entitled } => write!(
                f,
                "pool of {pool} bytes is smaller than the entitlements ({entitled} bytes)"
            ),
            ModelError::EntitlementAboveMemory { entitled, mem } => {
                write!(f, "entitlement {entitled} exceeds memory {mem}")
            }
            ModelError::TargetAboveMemory { target, mem } => {
                write!(f, "target {target} exceeds memory {mem}")
            }
            ModelError::DuplicateName(n) => write!(f, "partition {n} exists"),
            ModelError::UnknownName(n) => write!(f, "no partition {n}"),
            ModelError::BadName(n) => write!(f, "bad partition name '{n}'"),
            ModelError::TooManyPartitions => {
                write!(f, "too many partitions (at most {MAX_PARTITIONS})")
            }
            ModelError::MissingKey(k) => write!(f, "missing {k}="),
            ModelError::UnknownKey(k) => write!(f, "unknown argument '{k}'"),
            ModelError::BadNumber { value, reason } => write!(f, "bad number '{value}': {reason}"),
            ModelError::UnknownHcall(s) => write!(f, "unknown hcall '{s}'"),
            ModelError::BadStatus(s) => write!(f, "bad status '{s}'"),
            ModelError::SuccessNotInjectable => write!(f, "cannot inject H_SUCCESS"),
            ModelError::OutOfMemory { pages } => {
                write!(f, "no memory for the state of {pages} pages")
            }
            ModelError::Usage(u) => write!(f, "usage: {u}"),
            ModelError::NeedsDevice => write!(f, "hv host needs a virtio-balloon device"),
            ModelError::Output => write!(f, "output failed"),
        }
    }
}

/// Checks that `b` is whole pages; returns the page count.
fn pages_of(what: &'static str, b: u64) -> Result<u64, ModelError> {
    if !b.is_multiple_of(PAGE_SIZE) {
        return Err(ModelError::NotPageMultiple { what, bytes: b });
    }
    Ok(b / PAGE_SIZE)
}

fn weight_of(w: u64) -> Result<u8, ModelError> {
    u8::try_from(w).map_err(|_| ModelError::BadWeight(w))
}

fn check_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "self"
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::BadName(name.to_string()))
    }
}

impl<R: RawHcall> PoolModel<R> {
    /// Sum of all entitlements (pages) with partition `skip` (index into others)
    /// counted as `replacement` instead.
    fn entitled_sum(&self, skip: Option<usize>, replacement: u64) -> u64 {
        let others = self.others.iter().enumerate().fold(0u64, |a, (i, l)| {
            a.saturating_add(if Some(i) == skip { 0 } else { l.min() })
        });
        others
            .saturating_add(self.me.min())
            .saturating_add(replacement)
    }

    fn check_pool_fits(&self, pool: u64, entitled: u64) -> Result<(), ModelError> {
        if entitled > pool {
            return Err(ModelError::PoolTooSmall {
                pool: bytes(pool),
                entitled: bytes(entitled),
            });
        }
        Ok(())
    }

    /// Sets the pool size (`hv pool`). Must be whole pages, not zero, and hold every
    /// partition's entitlement.
    pub fn set_pool(&mut self, pool_bytes: u64) -> Result<(), ModelError> {
        let pool = pages_of("pool", pool_bytes)?;
        if pool == 0 {
            return Err(ModelError::ZeroSize("pool"));
        }
        self.check_pool_fits(pool, self.entitled_sum(None, 0))?;
        self.pool = pool;
        self.after_change();
        Ok(())
    }

    /// Applies `p` over `base` (a partition's current values), validating everything.
    fn build_lpar(&self, mut l: Lpar, p: &LparParams) -> Result<Lpar, ModelError> {
        if let Some(m) = p.mem {
            let m = pages_of("mem", m)?;
            if m == 0 {
                return Err(ModelError::ZeroSize("mem"));
            }
            l.logical = m;
            if p.entitled.is_none() {
                l.entitled = l.entitled.min(m);
            }
        }
        if let Some(e) = p.entitled {
            let e = pages_of("entitled", e)?;
            if e > l.logical {
                return Err(ModelError::EntitlementAboveMemory {
                    entitled: bytes(e),
                    mem: bytes(l.logical),
                });
            }
            l.entitled = e;
        }
        if let Some(w) = p.weight {
            l.weight = weight_of(w)?;
        }
        if let Some(d) = p.demand {
            l.demand = pages_of("demand", d)?;
        }
        Ok(l)
    }

    /// Adds another partition (`hv lpar add`). `mem` is required; weight defaults to
    /// 128, demand to 0, entitlement to 16 MiB (at most `mem`). Its allotment starts
    /// at 0 and grows at the capped rate.
    pub fn add_lpar(&mut self, name: &str, p: &LparParams) -> Result<(), ModelError> {
        check_name(name)?;
        if self.others.iter().any(|l| l.name == name) {
            return Err(ModelError::DuplicateName(name.to_string()));
        }
        if self.others.len() >= MAX_PARTITIONS {
            return Err(ModelError::TooManyPartitions);
        }
        let mem = p.mem.ok_or(ModelError::MissingKey("mem"))?;
        let logical = pages_of("mem", mem)?;
        let base = Lpar {
            name: name.to_string(),
            logical,
            entitled: (OTHER_DEFAULT_ENTITLED / PAGE_SIZE).min(logical),
            weight: DEFAULT_WEIGHT,
            demand: 0,
            share: 0,
            allotment: 0,
        };
        let l = self.build_lpar(base, p)?;
        self.check_pool_fits(self.pool, self.entitled_sum(None, l.min()))?;
        self.others.push(l);
        self.after_change();
        Ok(())
    }

    /// Changes another partition (`hv lpar set`); absent keys keep their values. A
    /// smaller `mem` without `entitled` lowers the entitlement to fit.
    pub fn set_lpar(&mut self, name: &str, p: &LparParams) -> Result<(), ModelError> {
        let i = self.index_of(name)?;
        let l = self.build_lpar(self.others[i].clone(), p)?;
        self.check_pool_fits(self.pool, self.entitled_sum(Some(i), l.min()))?;
        self.others[i] = l;
        self.after_change();
        Ok(())
    }

    /// Removes another partition (`hv lpar del`); its memory returns to the pool.
    pub fn del_lpar(&mut self, name: &str) -> Result<(), ModelError> {
        let i = self.index_of(name)?;
        self.others.remove(i);
        self.after_change();
        Ok(())
    }

    fn index_of(&self, name: &str) -> Result<usize, ModelError> {
        self.others
            .iter()
            .position(|l| l.name == name)
            .ok_or_else(|| ModelError::UnknownName(name.to_string()))
    }

    /// `Some(bytes)`: steer the loan request so that exactly `bytes` end up loaned
    /// (`hv target`); must be whole pages and at most this partition's memory.
    /// `None`: compute it from the pool again (`hv auto`).
    pub fn set_target(&mut self, target: Option<u64>) -> Result<(), ModelError> {
        self.mode = match target {
            None => LoanMode::Auto,
            Some(t) => {
                let pages = pages_of("target", t)?;
                if pages > self.me.logical {
                    return Err(ModelError::TargetAboveMemory {
                        target: t,
                        mem: bytes(self.me.logical),
                    });
                }
                LoanMode::Target(t)
            }
        };
        Ok(())
    }

    /// The next `count` calls of `kind` return `status` without any effect (`hv
    /// fail`); `count` 0 cancels. H_SUCCESS is refused. An injected H_CONSTRAINED on
    /// H_SET_MPP reads as a constrained success that changed nothing.
    pub fn fail(&mut self, kind: FailKind, count: u32, status: HStatus) -> Result<(), ModelError> {
        if status.is_success() {
            return Err(ModelError::SuccessNotInjectable);
        }
        self.failures[kind.index()] = (count > 0).then_some(Injection {
            remaining: count,
            status,
        });
        Ok(())
    }

    /// Injected failures still pending for `kind`: how many, and the status.
    pub fn pending_failures(&self, kind: FailKind) -> Option<(u32, HStatus)> {
        self.failures[kind.index()].map(|i| (i.remaining, i.status))
    }

    /// Takes one pending injected failure of `kind`, if any.
    pub(super) fn take_failure(&mut self, kind: FailKind) -> Option<HStatus> {
        let slot = &mut self.failures[kind.index()];
        let inj = slot.as_mut()?;
        let status = inj.status;
        inj.remaining -= 1;
        if inj.remaining == 0 {
            *slot = None;
        }
        self.stats.injected_failures = self.stats.injected_failures.saturating_add(1);
        Some(status)
    }

    /// Sets the length of a time step in µs (not zero).
    pub fn set_step_us(&mut self, us: u64) -> Result<(), ModelError> {
        if us == 0 {
            return Err(ModelError::ZeroSize("step_us"));
        }
        self.step_us = us;
        Ok(())
    }
}
