//! `org.varlink.service`.

use serde::{Deserialize, Serialize};

use super::Empty;

crate::interface! {
    "org.varlink.service";
    methods {
        GetInfo(Empty),
        GetInterfaceDescription(DescriptionIn),
    }
    errors {
        InterfaceNotFound,
        MethodNotFound,
        MethodNotImplemented,
        InvalidParameter,
        PermissionDenied,
        ExpectedMore,
    }
}

pub const VENDOR: &str = "nexscope";
pub const PRODUCT: &str = "nexscoped";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const URL: &str = env!("CARGO_PKG_REPOSITORY");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Info {
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub url: String,
    pub interfaces: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptionIn {
    pub interface: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DescriptionOut {
    pub description: String,
}
