//! The varlink protocol, once for both ends: call and reply objects, the errors of
//! `org.varlink.service`, NUL framing (`codec`), the interface texts we serve
//! (`interfaces`) and the blocking client that `nexscopectl` uses (`client`).
//!
//! Nothing here touches daemon state; the server side lives in `control`.

pub mod client;
pub mod codec;
mod declare;
pub mod interfaces;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::service::ErrorName;

/// The largest message either end accepts, NUL excluded. Calls carry commands
/// and chat text, never file contents (files go by path), so 8 MiB is far above
/// any legitimate message and still bounds what one connection can make us hold.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// A typed call a client can send: each interface's `Method`.
pub trait Request {
    fn call(&self) -> Call;
}

/// A method's parameters as the wire carries them. Our parameter types are
/// plain structs with string keys, which always serialize; were one not to,
/// the call would go without parameters and the daemon would name what is
/// missing.
pub fn parameters(input: &impl Serialize) -> Value {
    serde_json::to_value(input).unwrap_or(Value::Null)
}

/// A varlink call as it arrives on the wire. Unknown header keys (vendor
/// extensions) are ignored, as the varlink specification asks.
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
        let object = match &self.parameters {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(object)) => object.clone(),
            Some(_) => return Err(VarlinkError::invalid_parameter("parameters")),
        };
        serde_json::from_value(Value::Object(object)).map_err(|error| {
            let object = self.parameters.as_ref().and_then(Value::as_object);
            VarlinkError::invalid_parameter(&parameter_of::<T>(object, &error))
        })
    }
}

/// The parameter a decoding error is about. serde names a field in backticks
/// in "unknown field `x`" and "missing field `y`"; in type and value errors
/// the backticks hold the value ("invalid type: integer `7`"), which must
/// never be reported as a name. Those are found by decoding ever longer
/// prefixes of the object, in the order serde reads it: the shortest prefix
/// that fails for another reason than a missing field ends at the culprit.
/// A binary search keeps that to a few decodes, even for a huge object.
fn parameter_of<T: serde::de::DeserializeOwned>(
    object: Option<&Map<String, Value>>,
    error: &serde_json::Error,
) -> String {
    let message = error.to_string();
    for named in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some((name, _)) = message
            .strip_prefix(named)
            .and_then(|rest| rest.split_once('`'))
        {
            return name.to_string();
        }
    }
    let Some(object) = object else {
        return "parameters".into();
    };
    let fails = |len: usize| {
        let prefix: Map<String, Value> = object
            .iter()
            .take(len)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value::<T>(Value::Object(prefix))
            .is_err_and(|e| !e.to_string().starts_with("missing field `"))
    };
    // Invariant: the first `good` keys decode, the first `bad` ones do not.
    let (mut good, mut bad) = (0, object.len());
    if fails(good) || !fails(bad) {
        return "parameters".into(); // not about one field
    }
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        if fails(middle) {
            bad = middle;
        } else {
            good = middle;
        }
    }
    object
        .keys()
        .nth(bad - 1)
        .cloned()
        .unwrap_or_else(|| "parameters".into())
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
            ErrorName::InterfaceNotFound.name(),
            serde_json::json!({ "interface": interface }),
        )
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            ErrorName::MethodNotFound.name(),
            serde_json::json!({ "method": method }),
        )
    }

    pub fn method_not_implemented(method: &str) -> Self {
        Self::new(
            ErrorName::MethodNotImplemented.name(),
            serde_json::json!({ "method": method }),
        )
    }

    pub fn invalid_parameter(parameter: &str) -> Self {
        Self::new(
            ErrorName::InvalidParameter.name(),
            serde_json::json!({ "parameter": parameter }),
        )
    }

    pub fn permission_denied() -> Self {
        Self::new(ErrorName::PermissionDenied.name(), serde_json::json!({}))
    }

    pub fn expected_more() -> Self {
        Self::new(ErrorName::ExpectedMore.name(), serde_json::json!({}))
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
    fn a_bad_value_is_blamed_on_its_parameter_never_on_the_value() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct In {
            project: String,
            limit: Option<i64>,
            to: Option<Vec<String>>,
        }
        let blamed = |parameters: Value| {
            Call::new("x.Y", parameters)
                .decode::<In>()
                .unwrap_err()
                .parameters["parameter"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            blamed(serde_json::json!({"project": "p", "limit": 1.5})),
            "limit"
        );
        assert_eq!(
            blamed(serde_json::json!({"project": "p", "limit": "x"})),
            "limit"
        );
        assert_eq!(
            blamed(serde_json::json!({"limit": -1, "project": 7})),
            "project"
        );
        assert_eq!(
            blamed(serde_json::json!({"project": "p", "to": ["a", 1]})),
            "to"
        );
        assert_eq!(
            blamed(serde_json::json!({"project": "p", "lmit": 1})),
            "lmit"
        );
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
