//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds the
//! migrations directory at compile time, and cargo does not otherwise notice
//! a new file in it (a stale build would run without the new migration).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
