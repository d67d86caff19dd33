// `sqlx::migrate!` embeds the migrations at compile time; without this, adding a migration file
// does not rebuild the crate and the new migration silently never runs. The directory is the
// crate's own, so this also covers `src/` and this file, which Cargo would watch anyway.
fn main() {
    println!("cargo:rerun-if-changed=.");
}
