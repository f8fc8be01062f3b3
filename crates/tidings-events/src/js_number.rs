//! Numbers as JavaScript writes them.
//!
//! The backend is TypeScript, where every number is an `f64` and
//! `JSON.stringify(15)` gives `15`, not `15.0`. Quantities and amounts are kept
//! as `f64` in Rust and written the way JavaScript would, so a Rust publisher
//! and the backend put the same bytes on the wire.

use serde::{Deserialize, Deserializer, Serializer};

/// Largest integer an `f64` holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Writes integral values without a fractional part, as JavaScript does.
pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        // In range and integral, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let integer = *value as i64;
        serializer.serialize_i64(integer)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Reads any JSON number (integer or not) as an `f64`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    f64::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Wrapper(#[serde(with = "super")] f64);

    fn written(value: f64) -> String {
        serde_json::to_string(&Wrapper(value)).expect("a finite number serialises")
    }

    #[test]
    fn integral_values_are_written_without_a_fraction() {
        assert_eq!(written(15.0), "15");
        assert_eq!(written(-3.0), "-3");
        assert_eq!(written(0.0), "0");
    }

    #[test]
    fn fractional_values_keep_their_fraction() {
        assert_eq!(written(12.5), "12.5");
        assert_eq!(written(-0.25), "-0.25");
    }

    #[test]
    fn huge_values_are_written_as_floats() {
        let text = written(1e300);
        let back: Wrapper = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.0, 1e300);
    }
}
