//! A string that must never reach a log line: client secrets, private keys,
//! access tokens, client assertions and passcodes.

use std::fmt;

/// Holds a secret value. `Debug` prints a placeholder and there is no
/// `Display`, so `{:?}`/`%` in a log macro cannot leak it by accident.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Sensitive {
        Sensitive(value.into())
    }

    /// The value itself, for the few places that must send it somewhere.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Sensitive::new("hunter2");
        assert_eq!(format!("{s:?}"), "Sensitive(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
