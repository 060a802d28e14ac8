//! The controller's gRPC certificate. Workers in a cluster dial the controller across the pod
//! network and receive presigned part URLs and hub endpoints from it, so the stream runs over
//! TLS: the controller serves a certificate for its advertised host, and every Job carries the
//! CA that signed it (public), which the worker verifies before it sends its chunk's secret.
//!
//! The certificate lives in a `kubernetes.io/tls` Secret in the controller's namespace
//! (`tls.crt`, `tls.key`, `ca.crt`). One the admin provides (cert-manager, a corporate CA) is
//! used as it is. If there is none, the controller makes a private CA and a certificate for its
//! advertised host, valid a year, and stores them; it renews its own at start when the host
//! changed or fewer than [`RENEW_BEFORE_DAYS`] remain, and ends (to be restarted) when a
//! certificate it made is about to expire while it runs.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::error::{Error, Result};

/// The CA certificate's key in the Secret (what workers trust).
pub const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";
/// Marks a Secret whose certificate the controller made: the host it is for.
const GENERATED_FOR: &str = "hubmigrate.dev/generated-for";
/// The last day (days since 1970-01-01) a generated certificate is valid.
const EXPIRES_DAY: &str = "hubmigrate.dev/expires-day";
/// How long a certificate the controller makes is valid.
const VALID_DAYS: i64 = 365;
/// A generated certificate is replaced when fewer days than this remain.
pub const RENEW_BEFORE_DAYS: i64 = 30;

/// A server certificate, its key and the CA that signed it, all PEM.
#[derive(Clone)]
pub struct Material {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// When the controller should stop using it (a certificate it made), if known.
    pub renew_at: Option<SystemTime>,
}

impl Material {
    /// The identity tonic serves.
    pub fn identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("renew_at", &self.renew_at)
            .finish_non_exhaustive()
    }
}

/// Days since 1970-01-01, now.
fn today() -> i64 {
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        / 86_400) as i64
}

/// Valid from the start of day `from` to the start of day `until` (days since 1970-01-01).
fn set_validity(p: &mut rcgen::CertificateParams, from: i64, until: i64) {
    let at = |day: i64| {
        let (y, m, d) = super::civil(day);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    (p.not_before, p.not_after) = (at(from), at(until));
}

/// A private CA and a certificate for `host` (a DNS name or an IP address) signed by it, valid
/// from yesterday for [`VALID_DAYS`]. The CA's key is dropped: nothing else is ever signed.
pub fn generate(host: &str) -> Result<(Material, i64)> {
    let fail = |e: rcgen::Error| Error::Input(format!("cannot make the gRPC certificate for {host}: {e}"));
    let (from, until) = (today() - 1, today() + VALID_DAYS);
    let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "hubmigrate controller CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    set_validity(&mut ca, from, until);
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut leaf = rcgen::CertificateParams::new(vec![host.to_string()]).map_err(fail)?;
    leaf.distinguished_name.push(rcgen::DnType::CommonName, host);
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut leaf, from, until);
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;
    let material = Material {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        renew_at: Some(renew_at(until)),
    };
    Ok((material, until))
}

fn renew_at(expires_day: i64) -> SystemTime {
    let day = (expires_day - RENEW_BEFORE_DAYS).max(0) as u64;
    UNIX_EPOCH + Duration::from_secs(day * 86_400)
}

/// The host part of `url` (`https://host:port`, `https://[::1]:port`), as a certificate names it.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// The certificate in Secret `name` of `ns`; when there is none, or the controller's own no
/// longer fits (another host, near its end), a new one is made and stored.
pub async fn load_or_create(client: &kube::Client, ns: &str, name: &str, host: &str) -> Result<Material> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let existing = match secrets.get(name).await {
        Ok(s) => Some(s),
        Err(kube::Error::Api(e)) if e.code == 404 => None,
        Err(e) => return Err(Error::kube(format!("cannot read the Secret {ns}/{name}"), e)),
    };
    if let Some(s) = &existing {
        let notes = s.metadata.annotations.clone().unwrap_or_default();
        let data = s.data.clone().unwrap_or_default();
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).into_owned());
        let generated = notes.get(GENERATED_FOR);
        let expires = notes.get(EXPIRES_DAY).and_then(|d| d.parse::<i64>().ok());
        let fits = match generated {
            // The admin's certificate: used as it is (the worker's verification judges it).
            None => true,
            Some(h) => h == host && expires.is_some_and(|d| d - today() > RENEW_BEFORE_DAYS),
        };
        match (fits, text(CA_KEY), text(CERT_KEY), text(KEY_KEY)) {
            (true, Some(ca_pem), Some(cert_pem), Some(key_pem)) => {
                tracing::info!(secret = %format!("{ns}/{name}"), "gRPC certificate loaded");
                return Ok(Material {
                    ca_pem,
                    cert_pem,
                    key_pem,
                    renew_at: generated.and(expires).map(renew_at),
                });
            }
            (true, ..) if generated.is_none() => {
                return Err(Error::Input(format!(
                    "the Secret {ns}/{name} lacks one of {CA_KEY}, {CERT_KEY}, {KEY_KEY} (a kubernetes.io/tls Secret with its CA)"
                )));
            }
            _ => tracing::info!(secret = %format!("{ns}/{name}"), "renewing the controller's gRPC certificate"),
        }
    }
    let (material, until) = generate(host)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(BTreeMap::from([
                (GENERATED_FOR.to_string(), host.to_string()),
                (EXPIRES_DAY.to_string(), until.to_string()),
            ])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (CA_KEY.to_string(), ByteString(material.ca_pem.clone().into_bytes())),
            (CERT_KEY.to_string(), ByteString(material.cert_pem.clone().into_bytes())),
            (KEY_KEY.to_string(), ByteString(material.key_pem.clone().into_bytes())),
        ])),
        ..Default::default()
    };
    let written = match existing {
        None => secrets.create(&PostParams::default(), &secret).await,
        Some(_) => {
            secrets
                .patch(name, &PatchParams::default(), &Patch::Merge(&secret))
                .await
        }
    };
    written.map_err(|e| {
        Error::kube(
            format!("cannot store the gRPC certificate in the Secret {ns}/{name}"),
            e,
        )
    })?;
    tracing::info!(secret = %format!("{ns}/{name}"), host, "gRPC certificate made");
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(
            host_of("https://hubmigrate-controller.ml.svc:50051"),
            "hubmigrate-controller.ml.svc"
        );
        assert_eq!(host_of("https://127.0.0.1:4000"), "127.0.0.1");
        assert_eq!(host_of("https://[::1]:4000/x"), "::1");
        assert_eq!(host_of("controller"), "controller");
    }

    #[test]
    fn a_generated_certificate_names_its_host_and_is_due_for_renewal_before_it_ends() {
        let (m, until) = generate("127.0.0.1").unwrap();
        assert!(m.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(m.key_pem.contains("PRIVATE KEY"));
        assert_ne!(m.ca_pem, m.cert_pem);
        assert_eq!(until, today() + VALID_DAYS);
        let renew = m.renew_at.unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 86_400;
        assert_eq!(renew, until - RENEW_BEFORE_DAYS);
    }

    /// Registers without credentials over `channel`: answered Unauthenticated when the TLS
    /// session was established (the server saw the call).
    async fn reaches(url: &str, ca: Option<&str>) -> Result<tonic::Code, String> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string()).unwrap();
        if let Some(ca) = ca {
            let tls =
                tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca));
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        let mut client = hubmigrate_proto::coordinator_client::CoordinatorClient::new(channel);
        let req = hubmigrate_proto::RegisterRequest::default();
        Ok(client
            .register(req)
            .await
            .map(|_| tonic::Code::Ok)
            .unwrap_or_else(|s| s.code()))
    }

    /// A gRPC server on loopback serving `m`'s certificate; its `https://` URL.
    async fn serving(m: &Material) -> (String, tokio::task::JoinHandle<()>) {
        let registry = std::sync::Arc::new(crate::flow::transfer::grpc::Registry::default());
        let (addr, server) =
            crate::flow::transfer::grpc::serve(registry, ([127, 0, 0, 1], 0).into(), Some(m.identity()))
                .await
                .unwrap();
        (format!("https://{addr}"), server)
    }

    #[tokio::test]
    async fn workers_reach_the_server_only_through_the_ca_that_signed_its_certificate() {
        let (ours, _) = generate("127.0.0.1").unwrap();
        let (theirs, _) = generate("127.0.0.1").unwrap();
        let (url, server) = serving(&ours).await;
        assert_eq!(
            reaches(&url, Some(&ours.ca_pem)).await,
            Ok(tonic::Code::Unauthenticated)
        );
        let refused = reaches(&url, Some(&theirs.ca_pem)).await.unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
        // The server certificate itself is no CA: trusting it as one does not verify.
        assert!(reaches(&url, Some(&ours.cert_pem)).await.is_err());
        // In clear, the TLS server answers nothing a gRPC client accepts.
        let clear = url.replace("https://", "http://");
        assert!(!matches!(reaches(&clear, None).await, Ok(tonic::Code::Unauthenticated)));
        // A certificate for another host does not verify either.
        let (elsewhere, _) = generate("10.1.2.3").unwrap();
        let (url2, server2) = serving(&elsewhere).await;
        let wrong_host = reaches(&url2, Some(&elsewhere.ca_pem)).await.unwrap_err();
        assert!(wrong_host.contains("certificate"), "{wrong_host}");
        server.abort();
        server2.abort();
    }
}
