//! `org.varlink.service`: who we are and the texts of our interfaces.

use serde_json::Value;

use nexscope_proto::api::service::{DescriptionIn, DescriptionOut, Info, PRODUCT, URL, VENDOR, VERSION};
use nexscope_proto::varlink::{Call, VarlinkError, interfaces};

pub fn call(call: &Call, member: &str) -> Result<Value, VarlinkError> {
    match member {
        "GetInfo" => {
            call.decode::<nexscope_proto::api::daemon::Empty>()?;
            to_value(Info {
                vendor: VENDOR.into(),
                product: PRODUCT.into(),
                version: VERSION.into(),
                url: URL.into(),
                interfaces: interfaces::ALL
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .collect(),
            })
        }
        "GetInterfaceDescription" => {
            let input: DescriptionIn = call.decode()?;
            let description = interfaces::description(&input.interface)
                .ok_or_else(|| VarlinkError::interface_not_found(&input.interface))?;
            to_value(DescriptionOut {
                description: description.to_string(),
            })
        }
        _ => Err(VarlinkError::method_not_found(&call.method)),
    }
}

pub fn to_value(value: impl serde::Serialize) -> Result<Value, VarlinkError> {
    serde_json::to_value(value).map_err(|_| VarlinkError::invalid_parameter("result"))
}
