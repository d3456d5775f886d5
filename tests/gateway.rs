//! The nx-ce gateway, placeholder replaced below.
