//! `interface!`: one declaration per interface gives its `Method` enum (a
//! variant per method of the interface file, with its typed parameters) and
//! its `ErrorName` enum (a variant per error). The daemon matches `Method`
//! without a wildcard, so a method without a handler does not compile;
//! clients build calls from it, so a method name is never typed twice. The
//! interface files are checked against both (see the tests of `api`).

/// Declares an interface; see the module documentation.
#[macro_export]
macro_rules! interface {
    (
        $iface:literal;
        methods { $( $(#[$mdoc:meta])* $method:ident($input:ty) ),* $(,)? }
        errors { $( $(#[$edoc:meta])* $error:ident ),* $(,)? }
    ) => {
        pub const INTERFACE: &str = $iface;

        /// A call of this interface: which method, and its parameters.
        #[derive(Debug)]
        pub enum Method {
            $( $(#[$mdoc])* $method($input), )*
        }

        impl Method {
            /// The method names, in the order of the interface file.
            pub const MEMBERS: &'static [&'static str] = &[$(stringify!($method)),*];

            /// The method's name without the interface (`Say`).
            pub fn member(&self) -> &'static str {
                match self {
                    $( Method::$method(_) => stringify!($method), )*
                }
            }

            /// A call of this interface decoded by its method name; an
            /// unknown name is `MethodNotFound`, bad parameters
            /// `InvalidParameter` naming the parameter.
            pub fn decode(
                call: &$crate::varlink::Call,
            ) -> Result<Self, $crate::varlink::VarlinkError> {
                match call.interface_and_member().1 {
                    $( stringify!($method) => Ok(Method::$method(call.decode()?)), )*
                    _ => Err($crate::varlink::VarlinkError::method_not_found(&call.method)),
                }
            }
        }

        impl $crate::varlink::Request for Method {
            fn call(&self) -> $crate::varlink::Call {
                let parameters = match self {
                    $( Method::$method(input) => $crate::varlink::parameters(input), )*
                };
                $crate::varlink::Call::new(
                    format!("{}.{}", INTERFACE, self.member()),
                    parameters,
                )
            }
        }

        /// The errors of this interface, as the interface file names them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorName {
            $( $(#[$edoc])* $error, )*
        }

        impl ErrorName {
            /// Every error, in the order of the interface file.
            pub const ALL: &'static [ErrorName] = &[$(ErrorName::$error),*];
            /// Their fully qualified names, in the same order.
            pub const NAMES: &'static [&'static str] =
                &[$(concat!($iface, ".", stringify!($error))),*];

            /// The fully qualified varlink name (`io.nexscope.Chat.NotJoined`).
            pub fn name(self) -> &'static str {
                Self::NAMES[self as usize]
            }
        }
    };
}
