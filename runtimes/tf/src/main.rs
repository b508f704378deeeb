//! `speedbench-tf`: speedbench's command line with only its tf runtime in
//! it; `speedbench` starts it as the worker of every tf cell.

// TensorFlow's start-up log is silenced by a hook of the executable that runs
// before the libraries load; it belongs to this binary, not to the library.
mod quiet;

fn main() {
    speedbench::app::main(Some(&speedbench_tf::BACKEND))
}
