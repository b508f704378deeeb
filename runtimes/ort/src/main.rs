//! `speedbench-ort`: speedbench's command line with only its ort runtime in
//! it; `speedbench` starts it as the worker of every ort cell.

fn main() {
    speedbench::app::main(Some(&speedbench_ort::BACKEND))
}
