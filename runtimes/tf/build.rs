//! Bakes in where ci/setup.sh put libtensorflow (an rpath, so the worker
//! finds it with no LD_LIBRARY_PATH).

include!("../rpath.rs");

fn main() {
    rpath();
}
