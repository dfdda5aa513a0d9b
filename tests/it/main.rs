//! Integration tests: a fresh PostgreSQL database per test and the fake ChatofAI API over real
//! HTTP on a random port. No test sleeps: gates and signals order events.

mod capture;
mod helpers;

mod analysts;
mod backfill;
mod cli;
mod daemon;
mod erasure;
mod faults;
mod history;
mod hostile;
mod incremental;
mod interruption;
mod listing;
mod observability;
mod operations;
mod privacy;
mod quiet;
mod rejects;
mod retention;
mod semantics;
