//! `org.varlink.service`: who we are and the texts of our interfaces.

use serde_json::Value;

use nexscope_proto::api::service::{DescriptionOut, Info, Method, PRODUCT, URL, VENDOR, VERSION};
use nexscope_proto::varlink::{Call, VarlinkError, interfaces};

pub fn call(call: &Call) -> Result<Value, VarlinkError> {
    match Method::decode(call)? {
        Method::GetInfo(_) => to_value(Info {
            vendor: VENDOR.into(),
            product: PRODUCT.into(),
            version: VERSION.into(),
            url: URL.into(),
            interfaces: interfaces::ALL
                .iter()
                .map(|(name, _)| name.to_string())
                .collect(),
        }),
        Method::GetInterfaceDescription(input) => {
            let description = interfaces::description(&input.interface)
                .ok_or_else(|| VarlinkError::interface_not_found(&input.interface))?;
            to_value(DescriptionOut {
                description: description.to_string(),
            })
        }
    }
}

pub fn to_value(value: impl serde::Serialize) -> Result<Value, VarlinkError> {
    serde_json::to_value(value).map_err(|_| VarlinkError::invalid_parameter("result"))
}
