//! Detection: the rule engine over normalised events, and (later) the model.

pub mod credentials;
pub mod event;
pub mod normalize;
pub mod rules;
