//! The varlink protocol, once for both ends: call and reply objects, the errors of
//! `org.varlink.service`, NUL framing (`codec`), the interface texts we serve
//! (`interfaces`) and the blocking client that `nexscopectl` uses (`client`).
//!
//! Nothing here touches daemon state; the server side lives in `control`.

pub mod client;
pub mod codec;
pub mod interfaces;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest message either end accepts, NUL excluded. Calls carry commands
/// and chat text, never file contents (files go by path), so 8 MiB is far above
/// any legitimate message and still bounds what one connection can make us hold.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// A varlink call as it arrives on the wire. Unknown header keys (vendor
/// extensions) are ignored, as the spec asks.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Call {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub oneway: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub upgrade: bool,
}

impl Call {
    pub fn new(method: impl Into<String>, parameters: Value) -> Self {
        Call {
            method: method.into(),
            parameters: Some(parameters),
            ..Call::default()
        }
    }

    /// Splits `io.nexscope.Daemon.Status` into interface and method name.
    pub fn interface_and_member(&self) -> (&str, &str) {
        match self.method.rsplit_once('.') {
            Some((interface, member)) => (interface, member),
            None => ("", self.method.as_str()),
        }
    }

    /// The parameters decoded into a method's input type; a missing or null
    /// `parameters` is `{}`. A mismatch names the offending parameter, as
    /// `org.varlink.service.InvalidParameter` wants.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, VarlinkError> {
        let value = match &self.parameters {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(value) => value.clone(),
        };
        if !value.is_object() {
            return Err(VarlinkError::invalid_parameter("parameters"));
        }
        serde_json::from_value(value)
            .map_err(|error| VarlinkError::invalid_parameter(&parameter_of(&error.to_string())))
    }
}

/// serde names the field in backticks ("unknown field `x`", "missing field
/// `y`"); type errors name none, and then the whole object is blamed.
fn parameter_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|name| !name.is_empty())
        .unwrap_or("parameters")
        .to_string()
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A reply: parameters, or an error name with the error's parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub continues: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(parameters: Value, continues: bool) -> Self {
        Reply {
            parameters: Some(parameters),
            continues,
            error: None,
        }
    }

    pub fn from_error(error: &VarlinkError) -> Self {
        Reply {
            parameters: Some(error.parameters.clone()),
            continues: false,
            error: Some(error.name.to_string()),
        }
    }
}

/// A varlink error: a fully qualified name and its parameters. Interface errors
/// of nexscope carry `{code, message}` so that a person reading raw JSON knows
/// what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct VarlinkError {
    pub name: Cow<'static, str>,
    pub parameters: Value,
}

pub const SERVICE: &str = "org.varlink.service";

impl VarlinkError {
    pub fn new(name: impl Into<Cow<'static, str>>, parameters: Value) -> Self {
        VarlinkError {
            name: name.into(),
            parameters,
        }
    }

    /// An interface error of ours: `{code, message}`.
    pub fn coded(name: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self::new(
            name,
            serde_json::json!({ "code": code, "message": message.into() }),
        )
    }

    pub fn interface_not_found(interface: &str) -> Self {
        Self::new(
            "org.varlink.service.InterfaceNotFound",
            serde_json::json!({ "interface": interface }),
        )
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            "org.varlink.service.MethodNotFound",
            serde_json::json!({ "method": method }),
        )
    }

    pub fn method_not_implemented(method: &str) -> Self {
        Self::new(
            "org.varlink.service.MethodNotImplemented",
            serde_json::json!({ "method": method }),
        )
    }

    pub fn invalid_parameter(parameter: &str) -> Self {
        Self::new(
            "org.varlink.service.InvalidParameter",
            serde_json::json!({ "parameter": parameter }),
        )
    }

    pub fn permission_denied() -> Self {
        Self::new(
            "org.varlink.service.PermissionDenied",
            serde_json::json!({}),
        )
    }

    pub fn expected_more() -> Self {
        Self::new("org.varlink.service.ExpectedMore", serde_json::json!({}))
    }

    /// The `message` of a nexscope error, or a rendering of the standard ones.
    pub fn describe(&self) -> String {
        let field = |key: &str| self.parameters.get(key).and_then(Value::as_str);
        if let Some(message) = field("message") {
            return message.to_string();
        }
        let short = self.name.rsplit('.').next().unwrap_or(&self.name);
        match short {
            "InterfaceNotFound" => format!(
                "the daemon has no interface {:?} (is it older than nexscopectl?)",
                field("interface").unwrap_or("")
            ),
            "MethodNotFound" | "MethodNotImplemented" => format!(
                "the daemon has no method {:?} (is it older than nexscopectl?)",
                field("method").unwrap_or("")
            ),
            "InvalidParameter" => format!(
                "the daemon refused parameter {:?}",
                field("parameter").unwrap_or("")
            ),
            "PermissionDenied" => "the daemon belongs to another user".to_string(),
            "ExpectedMore" => "this method must be called with more: true".to_string(),
            _ => format!("{} {}", self.name, self.parameters),
        }
    }

    /// The short code of a nexscope error (`not_joined`), or the error's name.
    pub fn code(&self) -> String {
        self.parameters
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.name.rsplit('.').next().unwrap_or("").to_string())
    }
}

impl std::fmt::Display for VarlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for VarlinkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_names_the_unknown_or_missing_parameter() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct In {
            interface: String,
        }
        let call = Call::new("x.Y", serde_json::json!({"interfac": "a"}));
        let error = call.decode::<In>().unwrap_err();
        assert_eq!(error.parameters["parameter"], "interfac");
        let call = Call::new("x.Y", serde_json::json!({}));
        let error = call.decode::<In>().unwrap_err();
        assert_eq!(error.parameters["parameter"], "interface");
    }

    #[test]
    fn absent_parameters_are_an_empty_object() {
        #[derive(Deserialize)]
        struct Empty {}
        let call: Call = serde_json::from_str(r#"{"method":"a.B"}"#).unwrap();
        assert!(call.decode::<Empty>().is_ok());
        assert_eq!(call.interface_and_member(), ("a", "B"));
    }
}
