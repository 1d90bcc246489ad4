//! Where the series come from: Keycloak's password grant ([`keycloak`]) and the series
//! API ([`api`]), with the HTTP client they share.

pub mod api;
pub mod keycloak;
