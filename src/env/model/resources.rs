//! Quantities and container resources, shared by the components that run pods.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A Kubernetes resource quantity (`2`, `500m`, `16Gi`), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        // YAML turns `cpu: 2` into a number; Kubernetes accepts both spellings.
        Ok(Quantity(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => f.to_string(),
        }))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

/// A request/limit pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimit {
    /// Guaranteed amount.
    pub request: Quantity,
    /// Upper bound; must not be below `request`.
    pub limit: Quantity,
}

/// CPU and memory of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU request and limit.
    pub cpu: RequestLimit,
    /// Memory request and limit.
    pub memory: RequestLimit,
}

impl Resources {
    /// `(request, limit)` of CPU and of memory, for the components' defaults.
    pub(super) fn new(cpu: (&str, &str), memory: (&str, &str)) -> Self {
        Resources {
            cpu: RequestLimit { request: cpu.0.into(), limit: cpu.1.into() },
            memory: RequestLimit { request: memory.0.into(), limit: memory.1.into() },
        }
    }
}
