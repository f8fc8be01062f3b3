//! `tidings-desk`: starts the Tidings desktop app (see `lib.rs`).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tidings_desk_app::run()
}
