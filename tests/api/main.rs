mod auth;
mod cli;
mod delivery;
mod errors;
mod flow;
mod helpers;
mod limits;
mod openapi;
