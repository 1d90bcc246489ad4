//! Transaction names and aliases: "METHOD /api/…" paths drawn from the seed, unique
//! within a dataset, and the short slug of each name.

use std::collections::HashSet;

use crate::rng::SplitMix64;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RESOURCES: [&str; 16] = [
    "orders",
    "users",
    "payments",
    "products",
    "cart",
    "inventory",
    "accounts",
    "sessions",
    "invoices",
    "shipments",
    "reviews",
    "search",
    "notifications",
    "reports",
    "customers",
    "refunds",
];

/// A unique name for transaction `i`.
pub(super) fn transaction_name(
    i: usize,
    rng: &mut SplitMix64,
    used: &mut HashSet<String>,
) -> String {
    let method = METHODS[rng.index(METHODS.len())];
    let res = RESOURCES[rng.index(RESOURCES.len())];
    let sub = RESOURCES[rng.index(RESOURCES.len())];
    let path = match rng.index(6) {
        0 => format!("/api/{res}"),
        1 => format!("/api/{res}/{{id}}"),
        2 => format!("/api/v2/{res}"),
        3 => format!("/api/{res}/{{id}}/{sub}"),
        _ => format!("/api/endpoint{}", i + 1),
    };
    let candidate = format!("{method} {path}");
    // Collisions fall back to the endpoint form, which is unique to this index.
    let name = if used.contains(&candidate) {
        format!("{method} /api/endpoint{}", i + 1)
    } else {
        candidate
    };
    used.insert(name.clone());
    name
}

/// "GET /api/orders/{id}" -> "get-orders-id".
pub(super) fn alias_of(name: &str) -> String {
    let mut out = String::new();
    for part in name.split([' ', '/']) {
        let part: String = part
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if part.is_empty() || part == "api" {
            continue;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part);
    }
    out
}
