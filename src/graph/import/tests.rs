//! The importer on the committed fixtures (`ci/export_onnx.py fixtures`)
//! and on copies of them broken one way at a time.

use prost::Message;

use super::*;
use crate::graph::onnx_proto::{AttributeProto, Dimension, ATTR_INTS};
use crate::graph::ResizeMode;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/onnx/{name}.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn model(name: &str) -> ModelProto {
    ModelProto::decode(fixture(name).as_slice()).unwrap()
}

fn kinds(g: &Graph) -> Vec<&'static str> {
    g.nodes.iter().map(|n| n.op.kind()).collect()
}

fn find<'a>(g: &'a Graph, kind: &str) -> Vec<&'a Op> {
    g.nodes
        .iter()
        .filter(|n| n.op.kind() == kind)
        .map(|n| &n.op)
        .collect()
}

fn err(bytes: &[u8]) -> String {
    format!("{:#}", import(bytes, "broken").unwrap_err())
}

fn edited(name: &str, edit: impl FnOnce(&mut GraphProto)) -> Vec<u8> {
    let mut m = model(name);
    edit(m.graph.as_mut().unwrap());
    m.encode_to_vec()
}

#[test]
fn every_op_and_attribute_of_the_branch_fixture_is_mapped() {
    let imp = import(&fixture("branches"), "branches").unwrap();
    let g = &imp.graph;
    assert_eq!(imp.batch, Some(1));
    assert_eq!(g.input(), Shape::new(3, 32, 32));
    assert_eq!(g.num_classes(), 10);
    assert_eq!(g.nodes[g.output()].op.kind(), "linear");
    let convs = find(g, "conv");
    assert!(convs.iter().any(|op| matches!(
        op,
        Op::Conv {
            kernel: [1, 7],
            pad: [0, 3],
            ..
        }
    )));
    assert!(convs.iter().any(|op| matches!(
        op,
        Op::Conv {
            kernel: [7, 1],
            pad: [3, 0],
            ..
        }
    )));
    assert!(convs
        .iter()
        .any(|op| matches!(op, Op::Conv { groups: 4, .. })));
    assert!(convs
        .iter()
        .any(|op| matches!(op, Op::Conv { stride: [2, 2], .. })));
    assert_eq!(
        find(g, "maxpool"),
        [
            &Op::MaxPool {
                kernel: 3,
                stride: 2,
                pad: 0,
                ceil: true
            },
            &Op::MaxPool {
                kernel: 3,
                stride: 2,
                pad: 1,
                ceil: false
            },
        ]
    );
    let avg = |count_include_pad| Op::AvgPool {
        kernel: 3,
        stride: 1,
        pad: 1,
        count_include_pad,
    };
    assert_eq!(find(g, "avgpool"), [&avg(true), &avg(false)]);
    assert_eq!(find(g, "clip"), [&Op::Clip { min: 0.0, max: 6.0 }]);
    let Op::HardSigmoid { alpha, beta } = find(g, "hardsigmoid")[0] else {
        panic!("a hard sigmoid")
    };
    assert!((alpha - 1.0 / 6.0).abs() < 1e-7 && *beta == 0.5);
    assert_eq!(find(g, "hardswish").len(), 1);
    assert_eq!(find(g, "batchnorm").len(), 1, "the standalone batch norm");
    assert_eq!(find(g, "sigmoid").len(), 2, "the branch's and SiLU's");
    assert_eq!(find(g, "mul").len(), 2, "the gate and SiLU");
    assert_eq!(find(g, "concat").len(), 1);
    assert_eq!(find(g, "flatten").len(), 1);
    // the ceil-mode pool gives 8x8 from 16x16 (floor mode would give 7x7)
    let pool = g.nodes.iter().find(|n| n.op.kind() == "maxpool").unwrap();
    assert_eq!(pool.shape, Shape::new(8, 8, 8));
    // every initializer's element lands in the weights (the stem's batch
    // norm is folded into its convolution by the exporter)
    let m = model("branches");
    let stored: usize = m
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .map(|t| t.dims.iter().product::<i64>() as usize)
        .sum();
    let held: usize = imp.weights.tensors.values().map(|t| t.data.len()).sum();
    assert_eq!(held, stored);
    for (k, shape) in &g.params {
        assert_eq!(&imp.weights.tensors[k].shape, shape, "{k}");
    }
    // the 1x7 convolution's weight arrives as the file has it
    let w = &imp.weights.tensors["b1.Conv.weight"];
    assert_eq!(w.shape, [4, 8, 1, 7]);
    let init = m
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .find(|t| t.name == "b1.weight")
        .unwrap();
    assert_eq!(
        konst::from_proto(init).unwrap().as_floats().unwrap(),
        w.data
    );
}

#[test]
fn shape_chains_fold_into_a_channel_shuffle_split_flatten_and_linear() {
    let imp = import(&fixture("shuffle"), "shuffle").unwrap();
    let g = &imp.graph;
    assert_eq!(imp.batch, None, "the fixture's batch is symbolic");
    assert_eq!(
        find(g, "channelshuffle"),
        [&Op::ChannelShuffle { groups: 2 }]
    );
    assert_eq!(
        find(g, "slice"),
        [
            &Op::Slice { start: 0, end: 4 },
            &Op::Slice { start: 4, end: 8 }
        ]
    );
    let resizes: Vec<_> = g.nodes.iter().filter(|n| n.op.kind() == "resize").collect();
    assert_eq!(resizes.len(), 2);
    assert!(matches!(
        resizes[0].op,
        Op::Resize {
            h: 16,
            w: 16,
            mode: ResizeMode::Nearest
        }
    ));
    assert!(matches!(
        resizes[1].op,
        Op::Resize {
            h: 4,
            w: 4,
            mode: ResizeMode::Bilinear
        }
    ));
    // MatMul + Add is one linear layer, its weight transposed to [out, in]
    let linears: Vec<_> = g.nodes.iter().filter(|n| n.op.kind() == "linear").collect();
    assert_eq!(linears.len(), 2);
    let m = model("shuffle");
    let init = |n: &str| {
        let t = m
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .find(|t| t.name == n)
            .unwrap();
        konst::from_proto(t).unwrap().as_floats().unwrap()
    };
    let mm = linears.iter().find(|n| n.shape.c == 5).unwrap();
    let w = &imp.weights.tensors[&format!("{}.weight", mm.name)];
    assert_eq!(w.shape, [5, 8]);
    assert_eq!(
        w.data[8 + 3],
        init("w")[3 * 5 + 1],
        "row 1 column 3 is w[3][1]"
    );
    assert_eq!(
        imp.weights.tensors[&format!("{}.bias", mm.name)].data,
        init("b")
    );
    // the head concatenates two vectors: 6 + 5 outputs
    assert_eq!(g.num_classes(), 11);
    assert_eq!(g.nodes[g.output()].op.kind(), "concat");
    // the shape arithmetic is folded away: every node computes a tensor
    assert_eq!(
        kinds(g)
            .iter()
            .filter(|k| ["conv", "relu"].contains(k))
            .count(),
        5
    );
}

#[test]
fn identity_and_dropout_pass_their_input_on() {
    let bytes = edited("branches", |g| {
        // /Relu's output goes through an Identity and a Dropout first
        let relu = g.node.iter().position(|n| n.name == "/Relu").unwrap();
        let out = g.node[relu].output[0].clone();
        g.node[relu].output[0] = "pre".into();
        let pass = |op: &str, i: &str, o: &str| NodeProto {
            name: format!("/{op}"),
            op_type: op.into(),
            input: vec![i.into()],
            output: vec![o.into()],
            ..Default::default()
        };
        g.node.insert(relu + 1, pass("Identity", "pre", "mid"));
        g.node.insert(relu + 2, pass("Dropout", "mid", &out));
    });
    let plain = import(&fixture("branches"), "b").unwrap();
    let passed = import(&bytes, "b").unwrap();
    assert_eq!(kinds(&passed.graph), kinds(&plain.graph));
}

#[test]
fn nodes_that_share_a_name_get_one_each() {
    let bytes = edited("branches", |g| {
        for n in g
            .node
            .iter_mut()
            .filter(|n| n.name == "/Relu_1" || n.name == "/Relu_2")
        {
            n.name = "/same".into();
        }
    });
    let g = import(&bytes, "b").unwrap().graph;
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert!(
        names.contains(&"same") && names.contains(&"same.2"),
        "{names:?}"
    );
    assert_eq!(
        kinds(&g),
        kinds(&import(&fixture("branches"), "b").unwrap().graph)
    );
}

#[test]
fn bad_files_are_refused_with_what_and_where() {
    assert!(
        err(b"name = \"not onnx\"\n").contains("not"),
        "{}",
        err(b"x")
    );
    let whole = fixture("branches");
    let e = err(&whole[..whole.len() / 2]);
    assert!(e.contains("not a complete ONNX model"), "{e}");

    let dynamic = edited("branches", |g| {
        let t = g.input[0]
            .r#type
            .as_mut()
            .unwrap()
            .tensor_type
            .as_mut()
            .unwrap();
        t.shape.as_mut().unwrap().dim[2] = Dimension {
            value: Some(DimValue::DimParam("height".into())),
        };
    });
    let e = err(&dynamic);
    assert!(
        e.contains("input 'input'") && e.contains("[1, 3, ?, 32]") && e.contains("static"),
        "{e}"
    );

    let unsupported = edited("branches", |g| {
        let n = g.node.iter_mut().find(|n| n.name == "/Relu_1").unwrap();
        n.op_type = "Tanh".into();
    });
    let e = err(&unsupported);
    assert!(
        e.contains("node '/Relu_1' (Tanh)") && e.contains("not supported"),
        "{e}"
    );

    let dilated = edited("branches", |g| {
        let n = g.node.iter_mut().find(|n| n.name == "/a/Conv").unwrap();
        n.attribute.retain(|a| a.name != "dilations");
        n.attribute.push(AttributeProto {
            name: "dilations".into(),
            ints: vec![2, 2],
            r#type: ATTR_INTS,
            ..Default::default()
        });
    });
    let e = err(&dilated);
    assert!(
        e.contains("node '/a/Conv' (Conv)") && e.contains("'dilations' = [2, 2]"),
        "{e}"
    );

    let short = edited("branches", |g| {
        let t = g
            .initializer
            .iter_mut()
            .find(|t| t.name == "a.weight")
            .unwrap();
        t.raw_data.truncate(t.raw_data.len() - 4);
    });
    let e = err(&short);
    assert!(
        e.contains("initializer 'a.weight'") && e.contains("declares shape [4, 8, 1, 1]"),
        "{e}"
    );

    let cycle = edited("branches", |g| {
        // the stem reads what the last node computes
        let last = g.node.last().unwrap().output[0].clone();
        g.node[0].input[0] = last;
    });
    let e = err(&cycle);
    assert!(
        e.contains("node '/stem/Conv'") && e.contains("cycle"),
        "{e}"
    );

    let dangling = edited("branches", |g| {
        let n = g.node.iter_mut().find(|n| n.name == "/Relu_1").unwrap();
        n.input[0] = "nowhere".into();
    });
    let e = err(&dangling);
    assert!(
        e.contains("node '/Relu_1'") && e.contains("'nowhere'") && e.contains("no node"),
        "{e}"
    );

    let transposed = edited("branches", |g| {
        // the grouped [4, 2, 3, 3] declared as [2, 4, 3, 3]: the same
        // count, the wrong shape
        let t = g
            .initializer
            .iter_mut()
            .find(|t| t.name == "d.weight")
            .unwrap();
        t.dims = vec![2, 4, 3, 3];
    });
    let e = err(&transposed);
    assert!(
        e.contains("node '/d/Conv'")
            && e.contains("[2, 4, 3, 3]")
            && e.contains("need [out, 2, kh, kw]"),
        "{e}"
    );

    let scaled = edited("branches", |g| {
        let n = g.node.iter_mut().find(|n| n.op_type == "Gemm").unwrap();
        n.attribute
            .iter_mut()
            .find(|a| a.name == "alpha")
            .unwrap()
            .f = 2.0;
    });
    assert!(err(&scaled).contains("'alpha' = 2"), "{}", err(&scaled));

    let rectangular_pool = edited("branches", |g| {
        let n = g
            .node
            .iter_mut()
            .find(|n| n.name == "/pool/MaxPool")
            .unwrap();
        n.attribute
            .iter_mut()
            .find(|a| a.name == "kernel_shape")
            .unwrap()
            .ints = vec![3, 2];
    });
    let e = err(&rectangular_pool);
    assert!(
        e.contains("/pool/MaxPool") && e.contains("'kernel_shape' = [3, 2]"),
        "{e}"
    );

    let opset = {
        let mut m = model("branches");
        m.opset_import[0].version = 5;
        m.encode_to_vec()
    };
    assert!(err(&opset).contains("operator set 5"), "{}", err(&opset));
}

#[test]
fn reshape_targets_resolve_against_the_batch() {
    let batch = [BATCH, 8, 4, 4];
    assert_eq!(
        super::shapes::per_sample(&[BATCH, -1], &batch, 128).unwrap(),
        [128]
    );
    assert_eq!(
        super::shapes::per_sample(&[0, 2, 4, 0, 4], &batch, 128).unwrap(),
        [2, 4, 4, 4]
    );
    assert_eq!(
        super::shapes::per_sample(&[-1, 128], &batch, 128).unwrap(),
        [128]
    );
    assert_eq!(
        super::shapes::per_sample(&[1, -1], &[1, 8, 4, 4], 128).unwrap(),
        [128]
    );
    assert!(
        super::shapes::per_sample(&[2, -1], &[1, 8, 4, 4], 128).is_err(),
        "a batch of 2 from 1"
    );
    assert!(super::shapes::per_sample(&[BATCH, -1, -1], &batch, 128).is_err());
    assert!(super::shapes::per_sample(&[BATCH, 100], &batch, 128).is_err());
}

/// Constants keep their shapes through Reshape and Unsqueeze: a 2-D result
/// is refused where shape chains need 1-D ones.
#[test]
fn folded_constants_keep_their_shapes() {
    let node = |op: &str, inputs: &[&str], out: &str, attrs: Vec<AttributeProto>| NodeProto {
        name: format!("/{out}"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: attrs,
        ..Default::default()
    };
    let ints = |v: &[i64]| {
        vec![AttributeProto {
            name: "value_ints".into(),
            ints: v.to_vec(),
            r#type: ATTR_INTS,
            ..Default::default()
        }]
    };
    let with = |extra: Vec<NodeProto>| {
        edited("branches", |g| {
            for (i, n) in extra.into_iter().enumerate() {
                g.node.insert(i, n);
            }
        })
    };
    // [1..6] reshaped to [2, 3] is 2-D: gathering from it is refused
    let reshaped = with(vec![
        node("Constant", &[], "six", ints(&[1, 2, 3, 4, 5, 6])),
        node("Constant", &[], "shape", ints(&[2, 3])),
        node("Reshape", &["six", "shape"], "grid", vec![]),
        node("Constant", &[], "zero", ints(&[0])),
        node("Gather", &["grid", "zero"], "row", vec![]),
    ]);
    let e = err(&reshaped);
    assert!(
        e.contains("node '/row' (Gather)") && e.contains("1-D"),
        "{e}"
    );
    // [1..6] to [3, -1] fills in 2, and back to [-1] is 1-D again
    let flat = with(vec![
        node("Constant", &[], "six", ints(&[1, 2, 3, 4, 5, 6])),
        node("Constant", &[], "shape", ints(&[3, -1])),
        node("Reshape", &["six", "shape"], "grid", vec![]),
        node("Constant", &[], "back", ints(&[-1])),
        node("Reshape", &["grid", "back"], "line", vec![]),
        node("Constant", &[], "zero", ints(&[0])),
        node("Gather", &["line", "zero"], "first", vec![]),
    ]);
    assert!(import(&flat, "b").is_ok());
    // a vector unsqueezed twice is [1, 1, n]: concatenating it is refused
    let unsqueezed = with(vec![
        node("Constant", &[], "v", ints(&[4, 5])),
        node("Constant", &[], "axis", ints(&[0])),
        node("Unsqueeze", &["v", "axis"], "u1", vec![]),
        node("Unsqueeze", &["u1", "axis"], "u2", vec![]),
        node("Concat", &["u2", "u2"], "both", vec![]),
    ]);
    let e = err(&unsqueezed);
    assert!(
        e.contains("node '/both' (Concat)") && e.contains("1-D"),
        "{e}"
    );
    // Squeeze without axes (no second input, or an empty name for it)
    // drops every 1: [1, 1, 2] is 1-D again and concatenates
    for axes in [&["u2"][..], &["u2", ""][..]] {
        let squeezed = with(vec![
            node("Constant", &[], "v", ints(&[4, 5])),
            node("Constant", &[], "axis", ints(&[0])),
            node("Unsqueeze", &["v", "axis"], "u1", vec![]),
            node("Unsqueeze", &["u1", "axis"], "u2", vec![]),
            node("Squeeze", axes, "s", vec![]),
            node("Concat", &["s", "s"], "both", vec![]),
        ]);
        if let Err(e) = import(&squeezed, "b") {
            panic!("Squeeze with inputs {axes:?}: {e:#}");
        }
    }
}

#[test]
fn reshape_holes_are_filled_from_what_is_known() {
    let batch = [BATCH, 8, 4, 4];
    use super::shapes::per_sample;
    assert_eq!(per_sample(&[BATCH, 2, -1], &batch, 128).unwrap(), [2, 64]);
    assert_eq!(per_sample(&[0, 4, -1, 2], &batch, 128).unwrap(), [4, 16, 2]);
    // a copied dimension the value does not have is 0: refused, not a
    // division by zero
    assert!(per_sample(&[BATCH, 0, -1], &[BATCH], 8).is_err());
    assert!(
        per_sample(&[BATCH, 3, -1], &batch, 128).is_err(),
        "128 is not a multiple of 3"
    );
}
