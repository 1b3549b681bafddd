//! What this build's librdkafka can do (`builtin.features`): TLS, the SASL mechanisms, OIDC.
//! Read once at start-up, logged, and checked before a setting asks for a missing one.

use std::ffi::{c_char, CStr, CString};

use rdkafka::bindings as rdsys;

/// librdkafka's `builtin.features` of this build, e.g. `ssl`, `sasl_scram`, `sasl_oauthbearer`,
/// `sasl_gssapi`, `http`, `oidc`.
pub fn builtin_features() -> Vec<String> {
    let name = CString::new("builtin.features").expect("no NUL in a literal");
    let mut buffer = vec![0u8; 1024];
    let mut size = buffer.len();
    // SAFETY: a fresh configuration object, read into a buffer of the size given, then destroyed;
    // librdkafka writes at most `size` bytes, NUL-terminated, on success.
    let text = unsafe {
        let conf = rdsys::rd_kafka_conf_new();
        let result = rdsys::rd_kafka_conf_get(
            conf,
            name.as_ptr(),
            buffer.as_mut_ptr() as *mut c_char,
            &mut size,
        );
        rdsys::rd_kafka_conf_destroy(conf);
        if result != rdsys::rd_kafka_conf_res_t::RD_KAFKA_CONF_OK {
            return Vec::new();
        }
        CStr::from_ptr(buffer.as_ptr() as *const c_char)
            .to_string_lossy()
            .into_owned()
    };
    text.split(',').map(|f| f.trim().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_speaks_tls_every_sasl_mechanism_and_oidc() {
        let features = builtin_features();
        for wanted in [
            "ssl",
            "sasl_plain",
            "sasl_scram",
            "sasl_oauthbearer",
            "sasl_gssapi",
            "oidc",
        ] {
            assert!(
                features.iter().any(|f| f == wanted),
                "librdkafka built without {wanted}: {features:?}"
            );
        }
    }
}
