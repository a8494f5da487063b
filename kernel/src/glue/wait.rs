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

use kernel::timer::{after_ms, after_us, decrementer_ticks};

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
        let _due = self.timers.expire(now);
        let mut more = drivers::service_all(self);
        more |= self.background();
        self.arm_background(clock::ticks());
        trap::disable_interrupts();
        let wake_now = more
            || irq::events_pending()
            || drivers::pending()
            || console::input::interrupt_pending()
            || (for_input && console::input::waiting());
        if wake_now {
            trap::enable_interrupts();
            return;
        }
        trap::set_decrementer(decrementer_ticks(
            clock::ticks(),
            self.timers.next_deadline(),
        ));
        idle::cede();
    }

    /// Arms the balloon's and the model's timers from their state.
    fn arm_background(&mut self, now: u64) {
        let hz = clock::hz();
        match self.mm.next_poll_ms() {
            Some(ms) => {
                let at_us = ms.saturating_mul(1000);
                let now_us = clock::ticks_to_us(now);
                self.timers.arm(
                    Wake::BalloonPoll,
                    after_us(now, at_us.saturating_sub(now_us), hz),
                );
            }
            None => self.timers.arm(Wake::BalloonPoll, now),
        }
        match self.hv.inner().model_ref() {
            Some(m) if m.has_work() => {
                self.timers
                    .arm_no_later(Wake::ModelStep, after_us(now, m.step_us(), hz));
            }
            _ => self.timers.cancel(Wake::ModelStep),
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
