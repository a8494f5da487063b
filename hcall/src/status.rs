//! Hypervisor return codes as a typed enum.
//!
//! The raw status of an hcall is a signed 64-bit value in r3. Nothing past the
//! shim ever sees the bare integer: it is decoded into [`HStatus`] here, and an
//! unknown value is preserved in [`HStatus::Other`].

use core::fmt;

/// A decoded hcall status (r3 after `sc 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HStatus {
    /// H_SUCCESS (0).
    Success,
    /// H_BUSY (1): retry soon.
    Busy,
    /// H_LONG_BUSY_ORDER_* (9900..=9905): retry after the hinted delay.
    LongBusy {
        /// The raw code, 9900..=9905.
        code: i64,
        /// The hinted delay in milliseconds (1 ms .. 100 s).
        hint_ms: u64,
    },
    /// H_CONSTRAINED (4): done, but with values clamped to the partition's limits.
    Constrained,
    /// H_HARDWARE (-1).
    Hardware,
    /// H_FUNCTION (-2): the hcall is not implemented.
    Function,
    /// H_PRIVILEGE (-3).
    Privilege,
    /// H_PARAMETER (-4).
    Parameter,
    /// H_RESOURCE (-16).
    Resource,
    /// H_NOT_ENOUGH_RESOURCES (-44).
    NotEnoughResources,
    /// Any other value, kept as it was returned.
    Other(i64),
}

/// Raw values of the codes that have their own variant.
pub mod raw {
    /// H_SUCCESS
    pub const H_SUCCESS: i64 = 0;
    /// H_BUSY
    pub const H_BUSY: i64 = 1;
    /// H_CONSTRAINED
    pub const H_CONSTRAINED: i64 = 4;
    /// H_LONG_BUSY_ORDER_1_MSEC
    pub const H_LONG_BUSY_START: i64 = 9900;
    /// H_LONG_BUSY_ORDER_100_SEC
    pub const H_LONG_BUSY_END: i64 = 9905;
    /// H_HARDWARE
    pub const H_HARDWARE: i64 = -1;
    /// H_FUNCTION
    pub const H_FUNCTION: i64 = -2;
    /// H_PRIVILEGE
    pub const H_PRIVILEGE: i64 = -3;
    /// H_PARAMETER
    pub const H_PARAMETER: i64 = -4;
    /// H_NOT_FOUND (H_REMOVE of an empty slot)
    pub const H_NOT_FOUND: i64 = -7;
    /// H_RESOURCE
    pub const H_RESOURCE: i64 = -16;
    /// H_NOT_ENOUGH_RESOURCES
    pub const H_NOT_ENOUGH_RESOURCES: i64 = -44;
}

impl HStatus {
    /// Decodes a raw r3 value.
    pub fn from_raw(v: i64) -> Self {
        use raw::*;
        match v {
            H_SUCCESS => HStatus::Success,
            H_BUSY => HStatus::Busy,
            H_CONSTRAINED => HStatus::Constrained,
            H_LONG_BUSY_START..=H_LONG_BUSY_END => HStatus::LongBusy {
                code: v,
                hint_ms: 10u64.pow(u32::try_from(v - H_LONG_BUSY_START).unwrap_or(0)),
            },
            H_HARDWARE => HStatus::Hardware,
            H_FUNCTION => HStatus::Function,
            H_PRIVILEGE => HStatus::Privilege,
            H_PARAMETER => HStatus::Parameter,
            H_RESOURCE => HStatus::Resource,
            H_NOT_ENOUGH_RESOURCES => HStatus::NotEnoughResources,
            other => HStatus::Other(other),
        }
    }

    /// The raw r3 value this status was decoded from.
    pub fn to_raw(self) -> i64 {
        use raw::*;
        match self {
            HStatus::Success => H_SUCCESS,
            HStatus::Busy => H_BUSY,
            HStatus::LongBusy { code, .. } => code,
            HStatus::Constrained => H_CONSTRAINED,
            HStatus::Hardware => H_HARDWARE,
            HStatus::Function => H_FUNCTION,
            HStatus::Privilege => H_PRIVILEGE,
            HStatus::Parameter => H_PARAMETER,
            HStatus::Resource => H_RESOURCE,
            HStatus::NotEnoughResources => H_NOT_ENOUGH_RESOURCES,
            HStatus::Other(v) => v,
        }
    }

    /// The PAPR name of this status (`H_SUCCESS`, `H_LONG_BUSY_ORDER_10_MSEC`, ...), or
    /// `None` for an unknown value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            HStatus::Success => "H_SUCCESS",
            HStatus::Busy => "H_BUSY",
            HStatus::LongBusy { code, .. } => match code {
                9900 => "H_LONG_BUSY_ORDER_1_MSEC",
                9901 => "H_LONG_BUSY_ORDER_10_MSEC",
                9902 => "H_LONG_BUSY_ORDER_100_MSEC",
                9903 => "H_LONG_BUSY_ORDER_1_SEC",
                9904 => "H_LONG_BUSY_ORDER_10_SEC",
                _ => "H_LONG_BUSY_ORDER_100_SEC",
            },
            HStatus::Constrained => "H_CONSTRAINED",
            HStatus::Hardware => "H_HARDWARE",
            HStatus::Function => "H_FUNCTION",
            HStatus::Privilege => "H_PRIVILEGE",
            HStatus::Parameter => "H_PARAMETER",
            HStatus::Resource => "H_RESOURCE",
            HStatus::NotEnoughResources => "H_NOT_ENOUGH_RESOURCES",
            HStatus::Other(_) => return None,
        })
    }

    /// Parses a status given by name (`H_BUSY`, case-insensitive, `H_` optional) or as
    /// a decimal number (`-4`).
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(v) = s.parse::<i64>() {
            return Some(Self::from_raw(v));
        }
        let body = s
            .strip_prefix("H_")
            .or_else(|| s.strip_prefix("h_"))
            .unwrap_or(s);
        const KNOWN: [i64; 16] = [
            0, 1, 4, 9900, 9901, 9902, 9903, 9904, 9905, -1, -2, -3, -4, -16, -44, 2,
        ];
        KNOWN.iter().map(|&v| Self::from_raw(v)).find(|st| {
            st.name()
                .map(|n| n[2..].eq_ignore_ascii_case(body))
                .unwrap_or(false)
        })
    }

    /// True for H_SUCCESS.
    pub fn is_success(self) -> bool {
        self == HStatus::Success
    }

    /// True for H_BUSY and the long-busy range: the same call may succeed if retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, HStatus::Busy | HStatus::LongBusy { .. })
    }
}

impl fmt::Display for HStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({})", n, self.to_raw()),
            None => write!(f, "hcall status {}", self.to_raw()),
        }
    }
}

/// An hcall that did not succeed: which call, and the status it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HcallError {
    /// The PAPR name of the call, e.g. `H_GET_MPP`.
    pub call: &'static str,
    /// What it returned.
    pub status: HStatus,
}

impl fmt::Display for HcallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    const NAMED: [(i64, HStatus, &str); 10] = [
        (0, HStatus::Success, "H_SUCCESS"),
        (1, HStatus::Busy, "H_BUSY"),
        (4, HStatus::Constrained, "H_CONSTRAINED"),
        (-1, HStatus::Hardware, "H_HARDWARE"),
        (-2, HStatus::Function, "H_FUNCTION"),
        (-3, HStatus::Privilege, "H_PRIVILEGE"),
        (-4, HStatus::Parameter, "H_PARAMETER"),
        (-16, HStatus::Resource, "H_RESOURCE"),
        (-44, HStatus::NotEnoughResources, "H_NOT_ENOUGH_RESOURCES"),
        (
            9900,
            HStatus::LongBusy {
                code: 9900,
                hint_ms: 1,
            },
            "H_LONG_BUSY_ORDER_1_MSEC",
        ),
    ];

    #[test]
    fn every_named_code_maps_both_ways() {
        for (raw, st, name) in NAMED {
            assert_eq!(HStatus::from_raw(raw), st);
            assert_eq!(st.to_raw(), raw);
            assert_eq!(st.name(), Some(name));
            assert_eq!(HStatus::parse(name), Some(st));
            assert_eq!(HStatus::parse(&name[2..].to_ascii_lowercase()), Some(st));
            assert_eq!(HStatus::parse(&raw.to_string()), Some(st));
            assert_eq!(st.to_string(), alloc::format!("{name} ({raw})"));
        }
    }

    #[test]
    fn long_busy_hints() {
        let names = [
            "H_LONG_BUSY_ORDER_1_MSEC",
            "H_LONG_BUSY_ORDER_10_MSEC",
            "H_LONG_BUSY_ORDER_100_MSEC",
            "H_LONG_BUSY_ORDER_1_SEC",
            "H_LONG_BUSY_ORDER_10_SEC",
            "H_LONG_BUSY_ORDER_100_SEC",
        ];
        for (i, (code, hint_ms)) in (9900..=9905)
            .zip([1, 10, 100, 1000, 10_000, 100_000])
            .enumerate()
        {
            let st = HStatus::from_raw(code);
            assert_eq!(st, HStatus::LongBusy { code, hint_ms });
            assert!(st.is_retryable() && !st.is_success());
            assert_eq!(st.name(), Some(names[i]));
            assert_eq!(HStatus::parse(names[i]), Some(st));
        }
        // Just outside the range: not long busy.
        assert_eq!(HStatus::from_raw(9899), HStatus::Other(9899));
        assert_eq!(HStatus::from_raw(9906), HStatus::Other(9906));
        assert!(HStatus::Busy.is_retryable());
        assert!(!HStatus::Constrained.is_retryable());
    }

    #[test]
    fn unknown_values_are_preserved() {
        for v in [
            2,
            3,
            5,
            14,
            18,
            -5,
            -7,
            -9,
            -45,
            -67,
            -256,
            -9005,
            9999,
            i64::MIN,
            i64::MAX,
        ] {
            let st = HStatus::from_raw(v);
            assert_eq!(st, HStatus::Other(v));
            assert_eq!(st.to_raw(), v);
            assert_eq!(st.name(), None);
            assert_eq!(st.to_string(), alloc::format!("hcall status {v}"));
        }
        assert_eq!(HStatus::parse("H_FROB"), None);
        assert_eq!(HStatus::parse(""), None);
        assert_eq!(HStatus::parse("H_CLOSED"), None);
    }

    #[test]
    fn errors_display_the_call() {
        let e = HcallError {
            call: "H_GET_MPP",
            status: HStatus::Function,
        };
        assert_eq!(e.to_string(), "H_GET_MPP failed: H_FUNCTION (-2)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn raw_round_trips(v: i64) {
            prop_assert_eq!(HStatus::from_raw(v).to_raw(), v);
        }
    }
}
