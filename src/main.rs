//! The `speedbench` command: plans, starts the worker binary of each cell's
//! runtime, and reports. It links no runtime itself.

fn main() {
    speedbench::app::main(None)
}
