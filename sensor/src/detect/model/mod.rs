//! The clustering model: a file of clusters of normal feature windows
//! ([`artifact`]), scoring a window against them ([`score`]), and the
//! detector that turns anomalous windows into findings, once per episode,
//! after learning each device's own normal ([`detector`]). Training is in
//! [`crate::train`].

pub mod artifact;
pub mod detector;
pub mod score;

pub use artifact::{ModelArtifact, ModelError};
pub use detector::{ModelDetector, ModelFinding, ModelStats};
pub use score::{Deviation, Model, Score};
