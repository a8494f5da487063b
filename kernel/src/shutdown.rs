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

    /// A real hypervisor gets its pages back on every exit; the model ends with
    /// the kernel at os-term; with nothing loaned there is nothing to do.
    #[test]
    fn every_exit_and_backend() {
        use BackendKind::{Model, Phyp};
        use Exit::{OsTerm, PowerOff};
        let table = [
            (PowerOff, Phyp, 5, LoanReturn::Balloon),
            (OsTerm, Phyp, 5, LoanReturn::EachPage),
            (PowerOff, Model, 5, LoanReturn::Balloon),
            (OsTerm, Model, 5, LoanReturn::Nothing),
            (PowerOff, Phyp, 0, LoanReturn::Nothing),
            (OsTerm, Phyp, 0, LoanReturn::Nothing),
            (PowerOff, Model, 0, LoanReturn::Nothing),
            (OsTerm, Model, 0, LoanReturn::Nothing),
        ];
        for (exit, kind, loaned, want) in table {
            assert_eq!(
                loans_on_exit(exit, kind, loaned),
                want,
                "{exit:?} {kind:?} {loaned}"
            );
        }
    }
}
