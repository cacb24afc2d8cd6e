//! Verifying keys, each pinned to the one algorithm it may verify: an RSA
//! public key only RS256, an EC P-256 key only ES256 (the HS256 secret lives
//! in `token.rs`). Keys come from a PEM file (`--jwt-public-key`, its type
//! detected) or from a JWK of an identity provider's key set.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// DER of the `rsaEncryption` object identifier (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// DER of `id-ecPublicKey` (1.2.840.10045.2.1).
const OID_EC: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// DER of the P-256 curve, `prime256v1` (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?})", self.alg)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM file")]
    NotPem,
    #[error("is a private key; give the public key (openssl pkey -in key.pem -pubout)")]
    PrivateKey,
    #[error("is a certificate; give its public key (openssl x509 -in cert.pem -pubkey -noout)")]
    Certificate,
    #[error("is an EC key on a curve other than P-256 (only ES256 is supported)")]
    UnsupportedCurve,
    #[error("is neither an RSA nor an EC P-256 public key")]
    UnsupportedKey,
    #[error("could not be read as a {0} public key")]
    Malformed(&'static str),
}

/// Reads a PEM public key: RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`) pins RS256,
/// EC P-256 (`PUBLIC KEY`) pins ES256.
pub fn from_pem(pem_text: &[u8]) -> Result<VerifyingKey, KeyError> {
    let block = pem::parse(pem_text).map_err(|_| KeyError::NotPem)?;
    let der = block.contents();
    match block.tag() {
        "RSA PUBLIC KEY" => rsa_pem(pem_text),
        "PUBLIC KEY" if contains(der, OID_RSA) => rsa_pem(pem_text),
        "PUBLIC KEY" if contains(der, OID_EC) => {
            if !contains(der, OID_P256) {
                return Err(KeyError::UnsupportedCurve);
            }
            let key = DecodingKey::from_ec_pem(pem_text).map_err(|_| KeyError::Malformed("EC"))?;
            Ok(VerifyingKey {
                alg: Algorithm::ES256,
                key,
            })
        }
        tag if tag.contains("PRIVATE KEY") => Err(KeyError::PrivateKey),
        "CERTIFICATE" => Err(KeyError::Certificate),
        _ => Err(KeyError::UnsupportedKey),
    }
}

fn rsa_pem(pem_text: &[u8]) -> Result<VerifyingKey, KeyError> {
    let key = DecodingKey::from_rsa_pem(pem_text).map_err(|_| KeyError::Malformed("RSA"))?;
    Ok(VerifyingKey {
        alg: Algorithm::RS256,
        key,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Why a JWK of a key set is not used (the rest of the set still is).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkSkipped {
    #[error("not a JWK roomcast can read")]
    Unreadable,
    #[error("has no kid")]
    NoKid,
    #[error("is not a signing key")]
    NotForSigning,
    #[error("is not an RS256 RSA key or an ES256 P-256 key")]
    Unsupported,
    #[error("has malformed key material")]
    Malformed,
}

/// The `kid` and pinned key of one JWK: its `alg` when present must belong to
/// its `kty` (RSA: RS256; EC P-256: ES256); without `alg`, `kty`+`crv` decide.
/// Encryption keys (`use: enc`) and every other kind are skipped.
pub fn from_jwk(value: serde_json::Value) -> Result<(String, VerifyingKey), JwkSkipped> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| JwkSkipped::Unreadable)?;
    let kid = jwk.common.key_id.clone().ok_or(JwkSkipped::NoKid)?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err(JwkSkipped::NotForSigning);
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return Err(JwkSkipped::Unsupported),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwkSkipped::Malformed)?;
    Ok((kid, VerifyingKey { alg, key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Public halves of throwaway keys made with openssl for these tests.
    const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA43vx+lJMwpsKsGXAzMZx
rP44Cda+BtfNLIwCFGB2EBXXR0IbsKJOLF4fxEVA/3mrDCONcyrWslbt4k20ebtK
vYritZRQb4FiArKiG4xCrUS9VSQ19W0jeT39NHTErOf1bmn9fcGvn28yKHQzoyed
tk2xATLDYKVsLDVWS0BhwFG08K5XcuKa/Ng3f0N9VKsNIzFdMeCvRZbwtwXecmOS
iZvQ4Bnn3dtEO/ElJc/gTx+DECBYUJipgL7onJZZRrVkarl9e0+fzMLTMBlaVqkh
MuAMvHRomyjTxCD+xrGTW/gwOoJUQNWVapXl2ZxHTqBfuJ4GxezKlmSlYy+gbPyZ
NwIDAQAB
-----END PUBLIC KEY-----
";

    #[test]
    fn pem_type_is_detected_and_pins_the_algorithm() {
        let key = from_pem(RSA_PUBLIC.as_bytes()).unwrap();
        assert_eq!(key.alg, Algorithm::RS256);
        assert_eq!(from_pem(b"hello").err(), Some(KeyError::NotPem));
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(from_pem(private.as_bytes()).err(), Some(KeyError::PrivateKey));
    }

    #[test]
    fn jwks_keep_only_signing_keys_whose_alg_fits_their_type() {
        let rsa = json!({"kty": "RSA", "kid": "r1", "n": "43vx-lJMwpsKsGXAzMZxrP44Cda-BtfNLIwCFGB2EBXXR0IbsKJOLF4fxEVA_3mrDCONcyrWslbt4k20ebtKvYritZRQb4FiArKiG4xCrUS9VSQ19W0jeT39NHTErOf1bmn9fcGvn28yKHQzoyedtk2xATLDYKVsLDVWS0BhwFG08K5XcuKa_Ng3f0N9VKsNIzFdMeCvRZbwtwXecmOSiZvQ4Bnn3dtEO_ElJc_gTx-DECBYUJipgL7onJZZRrVkarl9e0-fzMLTMBlaVqkhMuAMvHRomyjTxCD-xrGTW_gwOoJUQNWVapXl2ZxHTqBfuJ4GxezKlmSlYy-gbPyZNw", "e": "AQAB"});
        let (kid, key) = from_jwk(rsa.clone()).unwrap();
        assert_eq!((kid.as_str(), key.alg), ("r1", Algorithm::RS256));
        let mut with_alg = rsa.clone();
        with_alg["alg"] = json!("RS256");
        assert!(from_jwk(with_alg).is_ok());
        let mut confused = rsa.clone();
        confused["alg"] = json!("HS256");
        assert_eq!(from_jwk(confused).err(), Some(JwkSkipped::Unsupported));
        let mut enc = rsa.clone();
        enc["use"] = json!("enc");
        assert_eq!(from_jwk(enc).err(), Some(JwkSkipped::NotForSigning));
        let mut no_kid = rsa;
        no_kid.as_object_mut().unwrap().remove("kid");
        assert_eq!(from_jwk(no_kid).err(), Some(JwkSkipped::NoKid));
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        assert_eq!(from_jwk(oct).err(), Some(JwkSkipped::Unsupported));
        let p384 = json!({"kty": "EC", "kid": "e", "crv": "P-384", "x": "AA", "y": "AA"});
        assert_eq!(from_jwk(p384).err(), Some(JwkSkipped::Unsupported));
        assert_eq!(
            from_jwk(json!({"kty": "weird"})).err(),
            Some(JwkSkipped::Unreadable)
        );
    }
}
