//! Value parsers for the `clap` feature: the payload types derive
//! `clap::Args`, so a command line's flags come from the contract itself.

use serde_json::{Map, Value};

/// A finite number (`12850.50`, `-3`); `inf` and `NaN` are refused, as JSON
/// cannot carry them.
pub fn finite_number(text: &str) -> Result<f64, String> {
    let number: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if number.is_finite() { Ok(number) } else { Err(format!("{text:?} is not a finite number")) }
}

/// A JSON object (`{"price":12.5}`).
pub fn json_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("expected a JSON object like {\"price\":12.5}".into()),
        Err(error) => Err(format!("not JSON: {error}")),
    }
}
