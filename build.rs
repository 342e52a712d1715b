fn main() {
    // Templates are embedded with include_dir; rebuild when any of them changes.
    println!("cargo:rerun-if-changed=templates");
}
