//! Where the series come from: Keycloak's password grant ([`keycloak`]) and the series
//! API ([`api`]), with the HTTP client they share; what the next fetch asks for and the
//! saved answer kept whole ([`fresh`]).

pub mod api;
pub mod fresh;
pub mod keycloak;
