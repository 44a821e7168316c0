//! Every route the API serves is wired to the API function in
//! template.yaml (an HttpApi event: its path, or a `{proxy+}` above it, and
//! its method or ANY), public exactly where the contract says so. The relay
//! route is the relay intake's function URL instead.

use crate::common;
use serde_json::Value;

/// Whether the event's `Path` takes `path` (`{x}` segments are parameters).
fn takes(event_path: &str, path: &str) -> bool {
    if let Some(prefix) = event_path.strip_suffix("{proxy+}") {
        return path.starts_with(prefix) && path.len() > prefix.len();
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (event_path.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.starts_with('{') && y.starts_with('{')))
}

#[test]
fn every_served_route_is_wired_to_the_api_function() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let events: Vec<(String, String, bool)> = t["Resources"]["ApiFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "HttpApi")
        .map(|e| {
            let p = &e["Properties"];
            let public = p["Auth"]["Authorizer"] == "NONE";
            (
                p["Method"].as_str().unwrap().to_uppercase(),
                p["Path"].as_str().unwrap().to_owned(),
                public,
            )
        })
        .collect();
    let doc = serde_json::to_value(account_connect::api::document()).unwrap();
    let mut missing = Vec::new();
    for route in account_connect::api::route_table() {
        if route.path.starts_with("/v1/relay/") {
            continue;
        }
        let op = &doc["paths"][route.path][route.method];
        let public = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())));
        let method = route.method.to_uppercase();
        let wired = events
            .iter()
            .find(|(m, p, _)| (*m == method || m == "ANY") && takes(p, route.path));
        match wired {
            None => missing.push(format!("{method} {}: no HttpApi event", route.path)),
            Some((_, p, open)) if *open != public => missing.push(format!(
                "{method} {} (event {p}): public {open}, contract says {public}",
                route.path
            )),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "routes API Gateway would not pass on as served:\n{}",
        missing.join("\n")
    );
}
