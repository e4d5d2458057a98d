//! The template hash: sha256 of the rendered pod template and the referenced config content.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use sha2::{Digest, Sha256};

/// Hex sha256 of `template` (serialized as JSON; k8s-openapi serializes struct fields in a
/// fixed order and maps sorted, so equal templates give equal bytes) followed by each
/// `(name, content)` of referenced config, length-prefixed so that boundaries cannot shift.
///
/// The template must not yet carry the hash annotation itself.
///
/// # Errors
/// `serde_json::Error` if the template cannot be serialized (not expected for these types).
pub fn template_hash(
    template: &PodTemplateSpec,
    config: &[(&str, &str)],
) -> Result<String, serde_json::Error> {
    let mut hasher = Sha256::new();
    let bytes = serde_json::to_vec(template)?;
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(&bytes);
    for (name, content) in config {
        for part in [name.as_bytes(), content.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The first `n` hex characters of the sha256 of `s`; used for short, stable volume names.
pub fn short_hash(s: &str, n: usize) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..n.min(hex.len())].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_content_and_boundaries_change_the_hash() {
        let t = PodTemplateSpec::default();
        let a = template_hash(&t, &[("fe.conf", "http_port = 8030")]).unwrap();
        let b = template_hash(&t, &[("fe.conf", "http_port = 8031")]).unwrap();
        let c = template_hash(&t, &[("fe.con", "fhttp_port = 8030")]).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            template_hash(&t, &[("fe.conf", "http_port = 8030")]).unwrap()
        );
        assert_eq!(a.len(), 64);
    }
}
