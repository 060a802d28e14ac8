//! Lists with the API server's `resourceVersion` semantics (unset: most recent; `0` or
//! `NotOlderThan`: at least that recent; `Exact`: that snapshot, rewound from the change log, or
//! 410 when it is older than the retained history), label and field selectors, and pagination
//! with `limit` and `continue` tokens that read every page from the first page's snapshot.

use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::Cluster;
use crate::store::ObjKey;
use crate::util::Query;
use crate::views::view_out;

/// The options of a list (and of a watch).
#[derive(Clone, Debug, Default)]
pub struct ListOpts {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (page size).
    pub limit: Option<usize>,
    /// `continue` token.
    pub cont: Option<String>,
    /// `resourceVersion`.
    pub rv: Option<String>,
    /// `resourceVersionMatch`.
    pub rv_match: Option<String>,
}

impl ListOpts {
    /// Reads the list options of a query; malformed selectors or numbers are a 400.
    pub fn from_query(q: &Query, info: &ResourceInfo) -> ApiResult<ListOpts> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(
            q.get("fieldSelector").unwrap_or(""),
            &info.field_selectors,
            &info.kind,
            &info.api_version(),
        )?;
        let limit = match q.get("limit") {
            Some(l) => {
                let n: i64 = l
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?;
                (n > 0).then_some(n as usize)
            }
            None => None,
        };
        let rv_match = q.get("resourceVersionMatch").map(String::from);
        if let Some(m) = &rv_match
            && !["Exact", "NotOlderThan"].contains(&m.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        Ok(ListOpts {
            labels,
            fields,
            limit,
            cont: q.get("continue").map(String::from),
            rv: q.get("resourceVersion").map(String::from),
            rv_match,
        })
    }

    /// Whether an object (as served) matches the selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The objects, as served.
    pub items: Vec<Value>,
    /// The snapshot's resourceVersion.
    pub rv: u64,
    /// Token for the next page.
    pub cont: Option<String>,
    /// Matching objects after this page (only without selectors, like the API server).
    pub remaining: Option<u64>,
}

/// Parses a resourceVersion parameter.
pub fn parse_rv(rv: &str) -> ApiResult<u64> {
    rv.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid value: {rv:?}: resourceVersion must be an unsigned integer"
        ))
    })
}

fn encode_continue(rv: u64, last: &ObjKey) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}\u{0}", last.ns, last.name)});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, String, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((rv, ns.to_string(), name.to_string()))
}

/// Lists objects of `info` (all namespaces when `ns` is `None`).
pub fn list(cl: &Cluster, info: &ResourceInfo, ns: Option<&str>, o: &ListOpts) -> ApiResult<Page> {
    let txn = cl.store.txn();
    let current = txn.rv();
    let storage = info.storage();
    let ns = if info.namespaced { ns } else { None };
    type Snapshot = (Vec<(ObjKey, Value)>, Option<(String, String)>);
    let (snapshot, after): Snapshot = if let Some(token) = &o.cont {
        let (rv, sns, sname) = decode_continue(token)?;
        let items = txn.list_at(&storage, ns, rv).map_err(|_| {
            ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new \
                 list without the continue parameter.",
            )
        })?;
        (items, Some((sns, sname)))
    } else {
        let asked = match o.rv.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(parse_rv(rv)?),
        };
        if o.rv_match.is_some() && asked.is_none() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        match (asked, o.rv_match.as_deref()) {
            (Some(0), Some("Exact")) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            (Some(n), _) if n > current => return Err(ApiError::too_large_rv(n, current)),
            (Some(n), Some("Exact")) => {
                let items = txn
                    .list_at(&storage, ns, n)
                    .map_err(|_| ApiError::expired("The resourceVersion for the provided list is too old."))?;
                (items, None)
            }
            _ => (
                txn.list(&storage, ns).map(|(k, v)| (k.clone(), v.clone())).collect(),
                None,
            ),
        }
    };
    let rv = match (&o.cont, o.rv_match.as_deref(), o.rv.as_deref()) {
        (Some(t), _, _) => decode_continue(t)?.0,
        (None, Some("Exact"), Some(n)) => parse_rv(n)?,
        _ => current,
    };
    drop(txn);
    let mut items = Vec::new();
    let mut cont = None;
    let mut remaining = 0u64;
    let mut last: Option<ObjKey> = None;
    for (k, obj) in snapshot {
        if let Some((sns, sname)) = &after
            && (k.ns.as_str(), k.name.as_str()) <= (sns.as_str(), sname.as_str())
        {
            continue;
        }
        let view = view_out(info, &obj);
        if !o.matches(&view) {
            continue;
        }
        if o.limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
            if cont.is_none() {
                cont = last.as_ref().map(|l| encode_continue(rv, l));
            }
            continue;
        }
        last = Some(k);
        items.push(view);
    }
    let selectors = !(o.labels.is_empty() && o.fields.is_empty());
    let remaining = (cont.is_some() && !selectors).then_some(remaining);
    Ok(Page {
        items,
        rv,
        cont,
        remaining,
    })
}

/// The list object of a page.
pub fn list_object(info: &ResourceInfo, page: Page) -> Value {
    let kind = if info.special == crate::registry::Special::EventV1 {
        "EventList".to_string()
    } else {
        format!("{}List", info.kind)
    };
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = page.cont {
        meta["continue"] = Value::String(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    json!({"kind": kind, "apiVersion": info.api_version(), "metadata": meta, "items": page.items})
}
