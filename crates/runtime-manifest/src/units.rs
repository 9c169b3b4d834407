//! Typed limit values: [`ByteSize`], [`Timeout`] and [`Fuel`].
//!
//! Sizes and durations are written as a whole number followed by a unit
//! (`"1MiB"`, `"100ms"`). Their `Display` output parses back to the same value,
//! which is what lets a manifest round-trip through serialization.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// Why a `<number><unit>` quantity such as `"1MiB"` or `"100ms"` did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantityError {
    /// The text is empty or has no digits.
    #[error("expected a whole number followed by a unit, such as {example}")]
    NotANumber {
        /// An example of the expected form.
        example: &'static str,
    },
    /// A number was given without a unit, which is ambiguous.
    #[error("`{number}` has no unit")]
    MissingUnit {
        /// The number as written.
        number: String,
    },
    /// The unit is not one of the accepted units.
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The accepted unit closest to what was written, if any is close.
        suggestion: Option<&'static str>,
    },
    /// The number has a fractional part.
    #[error("`{number}` is not a whole number")]
    Fractional {
        /// The number as written.
        number: String,
    },
    /// The number is negative.
    #[error("the value is negative")]
    Negative,
    /// The value does not fit in 64 bits.
    #[error("the value is too large to represent")]
    Overflow,
}

/// A unit accepted by a quantity, with its multiplier.
struct Unit {
    name: &'static str,
    multiplier: u64,
}

const BYTE_UNITS: &[Unit] = &[
    Unit { name: "B", multiplier: 1 },
    Unit { name: "KiB", multiplier: 1 << 10 },
    Unit { name: "MiB", multiplier: 1 << 20 },
    Unit { name: "GiB", multiplier: 1 << 30 },
];

const DURATION_UNITS: &[Unit] = &[Unit { name: "ms", multiplier: 1 }, Unit { name: "s", multiplier: 1_000 }];

/// Common misspellings mapped to the unit they most likely mean. SI units are
/// listed because "MB" is ambiguous (10^6 or 2^20) and must not be guessed.
const UNIT_ALIASES: &[(&str, &str)] = &[
    ("b", "B"),
    ("k", "KiB"),
    ("kb", "KiB"),
    ("kib", "KiB"),
    ("m", "MiB"),
    ("mb", "MiB"),
    ("mib", "MiB"),
    ("g", "GiB"),
    ("gb", "GiB"),
    ("gib", "GiB"),
    ("msec", "ms"),
    ("millis", "ms"),
    ("sec", "s"),
    ("secs", "s"),
    ("seconds", "s"),
    ("us", "ms"),
    ("ns", "ms"),
    ("m", "s"),
    ("min", "s"),
];

/// Parses `<digits>[ ]<unit>` against `units`, returning the value in the
/// smallest unit.
fn parse_quantity(text: &str, units: &[Unit], example: &'static str) -> Result<u64, QuantityError> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')) {
        Some(split) => (&text[..split], text[split..].trim_start()),
        None => (text, ""),
    };
    if number.is_empty() || !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(QuantityError::NotANumber { example });
    }
    if number.starts_with('-') {
        return Err(QuantityError::Negative);
    }
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.contains('.') {
        return Err(QuantityError::Fractional { number: number.to_owned() });
    }
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(QuantityError::NotANumber { example });
    }
    if unit.is_empty() {
        return Err(QuantityError::MissingUnit { number: number.to_owned() });
    }
    let Some(unit) = units.iter().find(|u| u.name == unit) else {
        return Err(QuantityError::UnknownUnit { unit: unit.to_owned(), suggestion: suggest_unit(unit, units) });
    };
    let value: u64 = digits.parse().map_err(|_| QuantityError::Overflow)?;
    value.checked_mul(unit.multiplier).ok_or(QuantityError::Overflow)
}

fn suggest_unit(unit: &str, units: &[Unit]) -> Option<&'static str> {
    let lower = unit.to_ascii_lowercase();
    UNIT_ALIASES
        .iter()
        .filter(|(alias, _)| *alias == lower)
        .map(|(_, name)| *name)
        .find(|name| units.iter().any(|u| u.name == *name))
}

/// Writes `value` with the largest unit that divides it exactly.
fn format_quantity(f: &mut fmt::Formatter<'_>, value: u64, units: &[Unit]) -> fmt::Result {
    let unit = units.iter().rev().find(|u| value != 0 && value.is_multiple_of(u.multiplier)).unwrap_or(&units[0]);
    write!(f, "{}{}", value / unit.multiplier, unit.name)
}

/// A number of bytes, written `"512KiB"`, `"4MiB"`, `"100B"` or as a plain
/// integer number of bytes in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

impl ByteSize {
    /// The size of `bytes` bytes.
    pub const fn bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The size of `kib` kibibytes (1024 bytes each).
    pub const fn kib(kib: u64) -> Self {
        Self(kib * 1024)
    }

    /// The size of `mib` mebibytes (1024 KiB each).
    pub const fn mib(mib: u64) -> Self {
        Self(mib * 1024 * 1024)
    }

    /// The size in bytes.
    pub const fn as_bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_quantity(text, BYTE_UNITS, "\"1MiB\"").map(Self)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_quantity(f, self.0, BYTE_UNITS)
    }
}

/// A wall-clock duration in whole milliseconds, written `"100ms"` or `"5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout(u64);

impl Timeout {
    /// A timeout of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timeout of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs * 1000)
    }

    /// The timeout in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The timeout as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl FromStr for Timeout {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_quantity(text, DURATION_UNITS, "\"100ms\"").map(Self)
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_quantity(f, self.0, DURATION_UNITS)
    }
}

/// Fuel for one call: roughly one unit per WebAssembly instruction executed.
///
/// Fuel is a TOML integer, so it is at most [`Fuel::MAX`] (`i64::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fuel(u64);

impl Fuel {
    /// The largest fuel a manifest can express (TOML integers are signed 64-bit).
    pub const MAX: Fuel = Fuel(i64::MAX as u64);
    /// The least fuel that lets a call run at all.
    pub const MIN: Fuel = Fuel(1);

    /// Fuel of `units`, or `None` if it is above [`Fuel::MAX`].
    pub const fn new(units: u64) -> Option<Self> {
        if units > Self::MAX.0 { None } else { Some(Self(units)) }
    }

    /// The amount of fuel.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Fuel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! serialize_as_display {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    )*};
}
serialize_as_display!(ByteSize, Timeout);

impl Serialize for Fuel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_in_every_unit() {
        assert_eq!("100B".parse(), Ok(ByteSize::bytes(100)));
        assert_eq!("512KiB".parse(), Ok(ByteSize::kib(512)));
        assert_eq!("4 MiB".parse(), Ok(ByteSize::mib(4)));
        assert_eq!("1GiB".parse(), Ok(ByteSize::mib(1024)));
    }

    #[test]
    fn byte_sizes_display_with_the_largest_exact_unit() {
        assert_eq!(ByteSize::bytes(1536).to_string(), "1536B");
        assert_eq!(ByteSize::kib(1536).to_string(), "1536KiB");
        assert_eq!(ByteSize::kib(2048).to_string(), "2MiB");
        assert_eq!(ByteSize::bytes(0).to_string(), "0B");
    }

    #[test]
    fn quantities_reject_what_they_cannot_read_exactly() {
        assert_eq!("1024".parse::<ByteSize>(), Err(QuantityError::MissingUnit { number: "1024".into() }));
        assert_eq!(
            "8MB".parse::<ByteSize>(),
            Err(QuantityError::UnknownUnit { unit: "MB".into(), suggestion: Some("MiB") })
        );
        assert_eq!("1.5MiB".parse::<ByteSize>(), Err(QuantityError::Fractional { number: "1.5".into() }));
        assert_eq!("-1MiB".parse::<ByteSize>(), Err(QuantityError::Negative));
        assert_eq!("99999999999999999999B".parse::<ByteSize>(), Err(QuantityError::Overflow));
        assert_eq!("17179869184GiB".parse::<ByteSize>(), Err(QuantityError::Overflow));
        assert_eq!("MiB".parse::<ByteSize>(), Err(QuantityError::NotANumber { example: "\"1MiB\"" }));
        assert_eq!(
            "2min".parse::<Timeout>(),
            Err(QuantityError::UnknownUnit { unit: "min".into(), suggestion: Some("s") })
        );
        assert_eq!("100ms".parse(), Ok(Timeout::from_millis(100)));
        assert_eq!("3s".parse(), Ok(Timeout::from_secs(3)));
    }

    #[test]
    fn fuel_stops_at_the_largest_toml_integer() {
        assert_eq!(Fuel::new(i64::MAX as u64).map(Fuel::get), Some(i64::MAX as u64));
        assert_eq!(Fuel::new(i64::MAX as u64 + 1), None);
    }
}
