//! The model's console surface: running a parsed `hv` command ([`HvCommand`],
//! parsed with its arguments in `command`) and the `name: value` state rows.

use core::fmt::{self, Write};

use super::command::HvCommand;
use super::{LoanMode, ModelError, PoolModel};
use hcall::raw::RawHcall;

impl<R: RawHcall> PoolModel<R> {
    /// Runs a parsed `hv` command: [`HvCommand::Show`] prints the state
    /// ([`PoolModel::render`]); the others change it and print nothing.
    /// [`HvCommand::Host`] needs a virtio balloon behind the model and is refused
    /// here. Errors leave the model unchanged.
    pub fn apply(&mut self, cmd: &HvCommand<'_>, out: &mut impl Write) -> Result<(), ModelError> {
        match *cmd {
            HvCommand::Show => self.render(out).map_err(|_| ModelError::Output),
            HvCommand::Target(bytes) => self.set_target(Some(bytes)),
            HvCommand::Auto => self.set_target(None),
            HvCommand::Host => Err(ModelError::NeedsDevice),
            HvCommand::Pool(bytes) => self.set_pool(bytes),
            HvCommand::LparAdd { name, ref params } => self.add_lpar(name, params),
            HvCommand::LparSet { name, ref params } => self.set_lpar(name, params),
            HvCommand::LparDel(name) => self.del_lpar(name),
            HvCommand::Fail {
                kind,
                count,
                status,
            } => self.fail(kind, count, status),
            HvCommand::Step(n) => {
                for _ in 0..n {
                    self.step();
                }
                Ok(())
            }
            HvCommand::StepUs(us) => self.set_step_us(us),
        }
    }

    /// Parses `hv <words>` ([`HvCommand::parse`]) and applies it.
    pub fn command(&mut self, words: &[&str], out: &mut impl Write) -> Result<(), ModelError> {
        self.apply(&HvCommand::parse(words)?, out)
    }

    /// Prints the model's state as `name: value` rows (sizes in bytes), then one
    /// `lpar <name>: mem=.. entitled=.. weight=.. demand=.. share=.. allotment=..`
    /// line per other partition.
    pub fn render(&self, w: &mut impl Write) -> fmt::Result {
        let me = self.self_view();
        let st = self.stats;
        let (mode, target) = match self.mode {
            LoanMode::Auto => ("auto", 0),
            LoanMode::Target(t) => ("target", t),
        };
        writeln!(w, "pool_bytes: {}", self.pool_bytes())?;
        writeln!(w, "pool_free: {}", self.pool_free_bytes())?;
        writeln!(w, "steps: {}", st.steps)?;
        writeln!(w, "step_us: {}", self.step_us)?;
        writeln!(w, "mode: {mode}")?;
        writeln!(w, "target_bytes: {target}")?;
        writeln!(w, "self_logical: {}", me.logical)?;
        writeln!(w, "self_entitled: {}", me.entitled)?;
        writeln!(w, "self_weight: {}", me.weight)?;
        writeln!(w, "self_demand: {}", me.demand)?;
        writeln!(w, "self_share: {}", me.share)?;
        writeln!(w, "self_allotment: {}", me.allotment)?;
        writeln!(w, "self_loaned: {}", self.loaned_bytes())?;
        writeln!(w, "self_resident: {}", self.resident_bytes())?;
        writeln!(w, "self_resident_unused: {}", self.resident_unused_bytes())?;
        writeln!(w, "self_paged_out: {}", self.paged_out_bytes())?;
        writeln!(w, "others_allotment: {}", self.others_allotment_bytes())?;
        writeln!(w, "loan_request: {}", self.loan_request_bytes())?;
        writeln!(w, "mapped_bytes: {}", self.mapped_bytes())?;
        writeln!(w, "cmo_faults: {}", st.cmo_faults)?;
        writeln!(w, "cmo_fault_time_usec: {}", st.cmo_fault_time_usec)?;
        writeln!(w, "pages_paged_out: {}", st.pages_paged_out)?;
        writeln!(w, "loaned_touches: {}", st.loaned_touches)?;
        writeln!(w, "injected_failures: {}", st.injected_failures)?;
        writeln!(w, "dropped_steps: {}", st.dropped_steps)?;
        for l in self.others() {
            writeln!(
                w,
                "lpar {}: mem={} entitled={} weight={} demand={} share={} allotment={}",
                l.name, l.logical, l.entitled, l.weight, l.demand, l.share, l.allotment
            )?;
        }
        Ok(())
    }
}
