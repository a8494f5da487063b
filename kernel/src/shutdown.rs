//! What becomes of the loaned pages when the kernel leaves the machine. Linux's
//! `cmm.c` gives them back from its reboot notifier; lpar-cmm decides here, and
//! the glue's exit paths carry the decision out.

use hcall::BackendKind;

/// How the kernel leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `poweroff`: the system is intact and in the shell's hands.
    PowerOff,
    /// `ibm,os-term` after a fatal error (a panic, an exception, a failed boot):
    /// the interrupted code holds the system and never runs again.
    OsTerm,
}

/// How the loaned pages go back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoanReturn {
    /// Through the balloon (`Mm::return_all`), with its book-keeping.
    Balloon,
    /// One H_PAGE_INIT(Active) per loaned page, straight to the hypervisor, with
    /// no book-keeping: nothing will read the books again.
    EachPage,
    /// Not at all: nothing is loaned, or the hypervisor is the kernel's own model,
    /// which ends with it (QEMU frees the guest's memory when it exits).
    Nothing,
}

/// The decision for `exit` with `loaned` pages loaned to a hypervisor of `kind`.
pub fn loans_on_exit(exit: Exit, kind: BackendKind, loaned: u64) -> LoanReturn {
    match (exit, kind) {
        _ if loaned == 0 => LoanReturn::Nothing,
        (Exit::PowerOff, _) => LoanReturn::Balloon,
        (Exit::OsTerm, BackendKind::Phyp) => LoanReturn::EachPage,
        (Exit::OsTerm, BackendKind::Model) => LoanReturn::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_hypervisor_gets_its_pages_back_on_every_exit() {
        assert_eq!(
            loans_on_exit(Exit::PowerOff, BackendKind::Phyp, 5),
            LoanReturn::Balloon
        );
        assert_eq!(
            loans_on_exit(Exit::OsTerm, BackendKind::Phyp, 5),
            LoanReturn::EachPage
        );
    }

    #[test]
    fn the_model_ends_with_the_kernel_and_nothing_loaned_needs_nothing() {
        assert_eq!(
            loans_on_exit(Exit::PowerOff, BackendKind::Model, 5),
            LoanReturn::Balloon
        );
        assert_eq!(
            loans_on_exit(Exit::OsTerm, BackendKind::Model, 5),
            LoanReturn::Nothing
        );
        for exit in [Exit::PowerOff, Exit::OsTerm] {
            for kind in [BackendKind::Phyp, BackendKind::Model] {
                assert_eq!(loans_on_exit(exit, kind, 0), LoanReturn::Nothing);
            }
        }
    }
}
