//! OData query options on `managedDevices`: `$select`, `$top`, `$skiptoken`
//! and server-driven paging through `@odata.nextLink`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::device::{self, ApiVersion};

/// The system query options the simulator understands, already
/// percent-decoded (`+` reads as a space, as form decoding does).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct QueryOptions {
    pub filter: Option<String>,
    pub select: Option<String>,
    pub top: Option<String>,
    pub skiptoken: Option<String>,
}

/// Split a raw query string into the options. Graph accepts the names with
/// or without the `$` prefix and in any case; other parameters are ignored.
/// A repeated option is a 400, as in OData.
pub(crate) fn parse_options(raw: Option<&str>) -> Result<QueryOptions, String> {
    let mut out = QueryOptions::default();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let name = key.trim_start_matches('$').to_ascii_lowercase();
        let slot = match name.as_str() {
            "filter" => &mut out.filter,
            "select" => &mut out.select,
            "top" => &mut out.top,
            "skiptoken" => &mut out.skiptoken,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!(
                "Query option '${name}' was specified more than once, but it must be specified at most once."
            ));
        }
        *slot = Some(value.into_owned());
    }
    Ok(out)
}

/// Canonical property names named by `$select`, in request order.
/// Err carries the unknown name for the "Could not find a property" message.
pub(crate) fn parse_select(text: &str, version: ApiVersion) -> Result<Vec<&'static str>, String> {
    let mut names = Vec::new();
    for raw in text.split(',') {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        let canonical =
            device::canonical_property(name, version).ok_or_else(|| name.to_string())?;
        if !names.contains(&canonical) {
            names.push(canonical);
        }
    }
    Ok(names)
}

/// `$top`: a non-negative integer.
pub(crate) fn parse_top(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| format!("Invalid value '{text}' for $top query option found."))
}

/// Opaque continuation token: the id of the last device already returned.
/// Keyed by id rather than position so concurrent inserts do not shift pages.
pub(crate) fn encode_skiptoken(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("LastDeviceId='{last_id}'"))
}

/// Inverse of [`encode_skiptoken`].
pub(crate) fn decode_skiptoken(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let id = text.strip_prefix("LastDeviceId='")?.strip_suffix('\'')?;
    Some(id.to_ascii_lowercase())
}

/// One page of `devices` (sorted by id) after `after`.
/// Returns the page and, if more remain, the id to continue after.
pub(crate) fn paginate<'a>(
    devices: impl Iterator<Item = &'a Map<String, Value>>,
    after: Option<&str>,
    size: usize,
) -> (Vec<&'a Map<String, Value>>, Option<String>) {
    let mut page = Vec::new();
    let mut more = false;
    for d in devices {
        let id = device::str_prop(d, "id").to_ascii_lowercase();
        if after.is_some_and(|a| id.as_str() <= a) {
            continue;
        }
        if page.len() == size {
            more = true;
            break;
        }
        page.push(d);
    }
    let next = if more && size > 0 {
        page.last()
            .map(|d| device::str_prop(d, "id").to_ascii_lowercase())
    } else {
        None
    };
    (page, next)
}

/// Characters escaped in the query values of a generated nextLink.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b',')
    .remove(b'@');

/// Absolute nextLink on this server that keeps the caller's options.
pub(crate) fn next_link(
    base: &str,
    version: ApiVersion,
    opts: &QueryOptions,
    after: &str,
) -> String {
    let mut parts = Vec::new();
    let mut push = |name: &str, value: &str| {
        parts.push(format!(
            "{name}={}",
            utf8_percent_encode(value, QUERY_VALUE)
        ));
    };
    if let Some(f) = &opts.filter {
        push("$filter", f);
    }
    if let Some(s) = &opts.select {
        push("$select", s);
    }
    if let Some(t) = &opts.top {
        push("$top", t);
    }
    push("$skiptoken", &encode_skiptoken(after));
    format!(
        "{base}/{}/deviceManagement/managedDevices?{}",
        version.as_str(),
        parts.join("&")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_decoded_and_prefix_optional() {
        let o = parse_options(Some(
            "$filter=deviceName+eq+%27Kim%27%27s%27&select=id,imei&%24top=5&x=1",
        ))
        .unwrap();
        assert_eq!(o.filter.as_deref(), Some("deviceName eq 'Kim''s'"));
        assert_eq!(o.select.as_deref(), Some("id,imei"));
        assert_eq!(o.top.as_deref(), Some("5"));
        assert!(parse_options(Some("$top=1&$TOP=2")).is_err());
        assert_eq!(parse_options(None).unwrap(), QueryOptions::default());
    }

    #[test]
    fn select_checks_names_per_version() {
        assert_eq!(
            parse_select("deviceName, SERIALNUMBER,deviceName", ApiVersion::V1).unwrap(),
            vec!["deviceName", "serialNumber"]
        );
        assert_eq!(
            parse_select("id,deviceType", ApiVersion::V1),
            Err("deviceType".to_string())
        );
        assert_eq!(
            parse_select("joinType", ApiVersion::Beta).unwrap(),
            vec!["joinType"]
        );
        assert_eq!(
            parse_select("bogus", ApiVersion::Beta),
            Err("bogus".to_string())
        );
    }

    #[test]
    fn select_shapes_the_view() {
        let mut d = device::template();
        d.insert("id".into(), json!("abc"));
        d.insert("deviceName".into(), json!("N"));
        let names = parse_select("deviceName", ApiVersion::Beta).unwrap();
        let v = device::view(
            &d,
            ApiVersion::Beta,
            device::Shape::Selected(&names),
            false,
            crate::profile::Profile::Standard,
        );
        assert_eq!(v, json!({"id": "abc", "deviceName": "N"}));
    }

    #[test]
    fn skiptoken_round_trips() {
        let t = encode_skiptoken("11111111-0000-4000-8000-000000000005");
        assert_eq!(
            decode_skiptoken(&t).as_deref(),
            Some("11111111-0000-4000-8000-000000000005")
        );
        assert_eq!(decode_skiptoken("garbage!"), None);
    }

    #[test]
    fn paging_walks_every_device_once() {
        let devices: Vec<Map<String, Value>> = (1..=7)
            .map(|n| {
                json!({"id": format!("id-{n}")})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let mut after: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let (page, next) = paginate(devices.iter(), after.as_deref(), 3);
            seen.extend(page.iter().map(|d| d["id"].as_str().unwrap().to_string()));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[6], "id-7");
        // An exact multiple of the page size has no trailing empty page.
        let (page, next) = paginate(devices.iter().take(6), Some("id-3"), 3);
        assert_eq!(page.len(), 3);
        assert_eq!(next, None);
    }

    #[test]
    fn next_link_keeps_options() {
        let opts = QueryOptions {
            filter: Some("operatingSystem eq 'Windows'".into()),
            select: Some("id,deviceName".into()),
            top: Some("5".into()),
            skiptoken: None,
        };
        let link = next_link("http://127.0.0.1:1", ApiVersion::Beta, &opts, "x");
        assert!(link.starts_with("http://127.0.0.1:1/beta/deviceManagement/managedDevices?$filter=operatingSystem%20eq%20%27Windows%27&$select=id,deviceName&$top=5&$skiptoken="));
        let query = link.split_once('?').unwrap().1;
        let parsed = parse_options(Some(query)).unwrap();
        assert_eq!(parsed.filter, opts.filter);
        assert_eq!(
            decode_skiptoken(parsed.skiptoken.as_deref().unwrap()).as_deref(),
            Some("x")
        );
    }
}
