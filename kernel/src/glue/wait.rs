//! Waiting without burning the processor: the kernel's timers and its idle step.
//!
//! Everything that waits has a timer ([`Wake`]) in [`System::timers`]: the
//! balloon's next round, the pool model's next step (armed only while the model
//! has something to move), the running command's deadline (`sleep`, `cmm wait`)
//! and a driver's timed poll (the vty's, when it has no interrupt).
//! [`System::idle`] gives every driver its turn (`drivers::service_all`), runs
//! the background work that is due, re-arms the timers from the state it left,
//! programs the decrementer for the earliest deadline and cedes; any interrupt (a
//! deadline, console input, the virtio balloon) brings it back.
//! When nothing is armed nothing ticks.

use kernel::timer::{after_ms, background_deadlines, idle_plan, Idle, IdleState};

use crate::arch::trap;
use crate::sys::System;
use crate::{clock, console, drivers, idle, irq};

/// What a timer wakes the kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The balloon's next round (every `delay_ms`).
    BalloonPoll,
    /// The pool model's next time step.
    ModelStep,
    /// The running command's deadline.
    Command,
    /// A driver's timed poll (by its name), e.g. the vty without an interrupt.
    Driver(&'static str),
}

/// The command was stopped by Ctrl-C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted;

impl core::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("interrupted")
    }
}

impl System {
    /// Runs due background work, then sleeps until the next deadline or
    /// interrupt. At the prompt (`for_input`) console input ends the sleep;
    /// while a command runs only a Ctrl-C does.
    pub fn idle(&mut self, for_input: bool) {
        irq::take_events();
        let now = clock::ticks();
        // Every wake-up looks at all the work below: whichever timer woke it
        // needs no dispatch.
        self.timers.discard_due(now);
        let mut more = drivers::service_all(self);
        more |= self.background();
        self.arm_background(clock::ticks());
        trap::disable_interrupts();
        let state = IdleState {
            more_work: more,
            event_pending: irq::events_pending() || drivers::pending(),
            ctrl_c: console::input::interrupt_pending(),
            for_input,
            input_waiting: console::input::waiting(),
        };
        match idle_plan(state, clock::ticks(), self.timers.next_deadline()) {
            Idle::RunAgain => trap::enable_interrupts(),
            Idle::Cede { decrementer } => {
                trap::set_decrementer(decrementer);
                idle::cede();
            }
        }
    }

    /// Arms the balloon's and the model's timers from their state.
    fn arm_background(&mut self, now: u64) {
        let model_step = self
            .hv
            .inner()
            .model()
            .filter(|m| m.has_work())
            .map(|m| m.step_us());
        let (balloon, model) =
            background_deadlines(now, clock::hz(), self.mm.next_poll_ms(), model_step);
        self.timers.arm(Wake::BalloonPoll, balloon);
        match model {
            Some(at) => self.timers.arm_no_later(Wake::ModelStep, at),
            None => self.timers.cancel(Wake::ModelStep),
        }
    }

    /// Runs background work and sleeps until `ms` have passed, or Ctrl-C.
    pub fn sleep_ms(&mut self, ms: u64) -> Result<(), Interrupted> {
        let end = after_ms(clock::ticks(), ms, clock::hz());
        self.wait_until(end, |_| false).map(|_| ())
    }

    /// Runs background work until `done` holds (checked after every wake-up),
    /// the deadline `end` (timebase ticks since boot) passes (`Ok(false)`), or
    /// Ctrl-C.
    pub fn wait_until(
        &mut self,
        end: u64,
        mut done: impl FnMut(&mut System) -> bool,
    ) -> Result<bool, Interrupted> {
        self.timers.arm(Wake::Command, end);
        let r = loop {
            if console::input::interrupt_pending() {
                break Err(Interrupted);
            }
            if done(self) {
                break Ok(true);
            }
            if clock::ticks() >= end {
                break Ok(false);
            }
            self.idle(false);
        };
        self.timers.cancel(Wake::Command);
        r
    }
}
