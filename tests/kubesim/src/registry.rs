//! The resources kubesim serves: the built-in ones the project uses (plus a few it may apply
//! without needing them to run), and every version of every registered
//! CustomResourceDefinition. Discovery, routing, tables and validation all read this.

use serde_json::Value;

/// A printer column (`additionalPrinterColumns` of a CRD, or a built-in table column).
#[derive(Clone, Debug)]
pub struct Column {
    /// Header (`Phase`).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub ty: String,
    /// OpenAPI format (`name` for the Name column).
    pub format: String,
    /// Description shown by `kubectl explain`-like tools.
    pub description: String,
    /// 0 for default output, higher only with `-o wide`.
    pub priority: i64,
    /// Simple JSONPath (`.status.phase`) the cell comes from.
    pub json_path: String,
}

/// Kind-specific behaviour a resource gets besides the generic store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// Plain storage.
    None,
    /// `v1` Pods: validated, run by the kubelet, logs.
    Pod,
    /// `batch/v1` Jobs: defaulted, validated, driven by the job controller.
    Job,
    /// `v1` Secrets: `stringData` folded into `data`, base64 checked.
    Secret,
    /// `v1` Services: a cluster IP is allocated.
    Service,
    /// `v1` Events (storage of both event APIs).
    Event,
    /// `events.k8s.io/v1` Events: a converted view of the `v1` ones.
    EventV1,
    /// `v1` Namespaces: deleting one deletes its content.
    Namespace,
    /// CustomResourceDefinitions: writing one registers its resource.
    Crd,
    /// An instance of a custom resource (pruned and validated against its schema).
    Custom,
}

/// One served resource of one group version.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// API group (`""` for core).
    pub group: String,
    /// Version (`v1`, `v1alpha1`).
    pub version: String,
    /// Plural resource name (`migrations`).
    pub resource: String,
    /// Singular name (`migration`).
    pub singular: String,
    /// Kind (`Migration`).
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`mig`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether the status subresource exists (and isolates status from the main resource).
    pub status: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Kind-specific behaviour.
    pub special: Special,
    /// Printer columns after `Name` (for custom resources, from the CRD).
    pub columns: Vec<Column>,
    /// `openAPIV3Schema` of a custom resource version.
    pub schema: Option<Value>,
    /// Extra field selectors allowed (`selectableFields` of a CRD, or built-in ones).
    pub field_selectors: Vec<String>,
    /// Whether delete orphans dependents by default (batch/v1 Jobs do, for compatibility).
    pub orphan_by_default: bool,
}

impl ResourceInfo {
    /// `group/version`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key of the resource: `group/resource`. Versions of one resource share it; the
    /// `events.k8s.io` view is stored with core events.
    pub fn storage(&self) -> String {
        match self.special {
            Special::EventV1 => "/events".to_string(),
            _ => format!("{}/{}", self.group, self.resource),
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.special == Special::Custom
    }

    /// Subresources served (`status`, `log`).
    pub fn subresources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.status {
            s.push("status");
        }
        if self.special == Special::Pod {
            s.push("log");
        }
        s
    }
}

struct Builtin {
    group: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    special: Special,
    fields: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        resource: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        status: true,
        special: Special::Namespace,
        fields: &["status.phase"],
    },
    Builtin {
        group: "",
        resource: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        status: true,
        special: Special::Pod,
        fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Builtin {
        group: "",
        resource: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        status: false,
        special: Special::Secret,
        fields: &["type"],
    },
    Builtin {
        group: "",
        resource: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "",
        resource: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        status: true,
        special: Special::Service,
        fields: &[],
    },
    Builtin {
        group: "",
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "",
        resource: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        special: Special::Event,
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "events.k8s.io",
        resource: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        special: Special::EventV1,
        fields: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "reason",
            "reportingController",
            "type",
        ],
    },
    Builtin {
        group: "batch",
        resource: "jobs",
        kind: "Job",
        namespaced: true,
        short: &[],
        status: true,
        special: Special::Job,
        fields: &["status.successful"],
    },
    Builtin {
        group: "apps",
        resource: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        status: true,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        resource: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        kind: "NetworkPolicy",
        namespaced: true,
        short: &["netpol"],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        resource: "roles",
        kind: "Role",
        namespaced: true,
        short: &[],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        resource: "rolebindings",
        kind: "RoleBinding",
        namespaced: true,
        short: &[],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        resource: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        short: &[],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        resource: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short: &[],
        status: false,
        special: Special::None,
        fields: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        status: true,
        special: Special::Crd,
        fields: &[],
    },
];

fn builtin_info(b: &Builtin) -> ResourceInfo {
    let version = "v1".to_string();
    let categories = match b.resource {
        "pods" | "services" | "jobs" | "deployments" => vec!["all".to_string()],
        _ => vec![],
    };
    ResourceInfo {
        group: b.group.to_string(),
        version,
        resource: b.resource.to_string(),
        singular: b.kind.to_ascii_lowercase(),
        kind: b.kind.to_string(),
        namespaced: b.namespaced,
        short_names: b.short.iter().map(|s| s.to_string()).collect(),
        categories,
        status: b.status,
        generation: matches!(b.special, Special::Job | Special::Crd) || b.resource == "deployments",
        special: b.special,
        columns: Vec::new(),
        schema: None,
        field_selectors: b.fields.iter().map(|s| s.to_string()).collect(),
        orphan_by_default: b.special == Special::Job,
    }
}

/// The served resources: built-ins first, then custom resources in registration order.
#[derive(Clone, Debug)]
pub struct Registry {
    resources: Vec<ResourceInfo>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            resources: BUILTINS.iter().map(builtin_info).collect(),
        }
    }
}

impl Registry {
    /// Every served resource.
    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// The resource served at `group/version/resource`.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.resource == resource)
    }

    /// A resource stored under `storage` (the first version; core Events rather than their
    /// `events.k8s.io` view).
    pub fn by_storage(&self, storage: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.storage() == storage && r.special != Special::EventV1)
    }

    /// The groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// The resources of one group version.
    pub fn of_group_version(&self, group: &str, version: &str) -> Vec<&ResourceInfo> {
        self.resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    /// Replaces the resources of the CRD `crd_name` (`plural.group`) with those of `crd`, or
    /// removes them when `crd` is `None`.
    pub fn set_crd(&mut self, crd_name: &str, crd: Option<&Value>) {
        self.resources
            .retain(|r| !(r.is_custom() && format!("{}.{}", r.resource, r.group) == crd_name));
        if let Some(crd) = crd {
            self.resources.extend(infos_from_crd(crd));
        }
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The resources a CustomResourceDefinition serves: one per served version.
pub fn infos_from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let mut columns: Vec<Column> = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                ty: c["type"].as_str().unwrap_or("string").to_string(),
                format: c["format"].as_str().unwrap_or_default().to_string(),
                description: c["description"].as_str().unwrap_or_default().to_string(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        if !v.get("additionalPrinterColumns").is_some_and(Value::is_array) {
            columns.push(age_column());
        }
        let field_selectors = v["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["jsonPath"].as_str())
            .map(|p| p.trim_start_matches('.').to_string())
            .collect();
        out.push(ResourceInfo {
            group: group.clone(),
            version: v["name"].as_str().unwrap_or_default().to_string(),
            resource: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: str_list(names.get("shortNames")),
            categories: str_list(names.get("categories")),
            status: v["subresources"].get("status").is_some(),
            generation: true,
            special: Special::Custom,
            columns,
            schema: v["schema"].get("openAPIV3Schema").cloned(),
            field_selectors,
            orphan_by_default: false,
        });
    }
    out
}

/// The `Age` column of objects.
pub fn age_column() -> Column {
    Column {
        name: "Age".into(),
        ty: "date".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}
