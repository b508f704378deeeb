//! `speedbench-torch`: speedbench's command line with only its torch runtime in
//! it; `speedbench` starts it as the worker of every torch cell.

fn main() {
    speedbench::app::main(Some(&speedbench_torch::BACKEND))
}
