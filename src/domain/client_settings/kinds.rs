//! The kinds of client setting: what a change gives (`Raw`) and what a client
//! holds (`Value`). The layers that show or read settings implement their own
//! traits over these kinds (how the API shows one, how the CLI prints one).

use phonenumber::country::Id as CountryId;

use crate::domain::{CodeLength, Locale};

pub trait Kind {
    /// As a change gives it, not yet checked.
    type Raw;
    /// As a client holds it, checked.
    type Value: Clone + std::fmt::Debug + PartialEq;
}

/// A whole number (a count, a weight, seconds).
pub enum Count {}
/// The digits of a code.
pub enum Digits {}
/// The name the messages give the client.
pub enum Name {}
/// A message template.
pub enum Template {}
/// A list of countries.
pub enum Countries {}
/// A language.
pub enum Lang {}
/// On or off.
pub enum Switch {}

impl Kind for Count {
    type Raw = i64;
    type Value = u32;
}

impl Kind for Digits {
    type Raw = i64;
    type Value = CodeLength;
}

impl Kind for Name {
    type Raw = String;
    type Value = String;
}

impl Kind for Template {
    type Raw = String;
    type Value = String;
}

impl Kind for Countries {
    type Raw = Vec<String>;
    type Value = Vec<CountryId>;
}

impl Kind for Lang {
    type Raw = String;
    type Value = Locale;
}

impl Kind for Switch {
    type Raw = bool;
    type Value = bool;
}
