use super::*;
use crate::graph::onnx_proto::{OperatorSetIdProto, TensorProto};

/// An ORT-style node: `name`, reading `inputs`, writing `outputs`.
fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: "Op".into(),
        domain: "com.microsoft.nchwc".into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>) -> ModelProto {
    let init = |n: &str| TensorProto {
        name: n.into(),
        data_type: FLOAT,
        dims: vec![1],
        raw_data: vec![0; 4],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: "com.microsoft.nchwc".into(),
            version: 1,
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: vec![init("w_stem"), init("w_left"), init("w_right")],
            output: vec![ValueInfoProto {
                name: "logits".into(),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// ORT's optimised diamond: stem and right moved to NCHWc, a reorder out
/// of the blocked layout after each (nodes of ORT's own), left fused under
/// its own name, the tail fused into one node named after `fc`.
fn diamond_nodes() -> Vec<NodeProto> {
    vec![
        node("stem_nchwc", &["input", "w_stem"], &["b"]),
        node("ReorderOutput_token_1", &["b"], &["stem"]),
        node("left", &["stem", "w_left"], &["left"]),
        node("right_nchwc", &["b", "w_right"], &["r"]),
        node("ReorderOutput_token_2", &["r"], &["right"]),
        node("add", &["left", "right"], &["add"]),
        node("fc", &["add", ""], &["logits"]),
    ]
}

/// Parts of the diamond's schedule: stem | left, right | the rest.
fn parts(g: &Graph) -> (Vec<Option<usize>>, Vec<usize>) {
    let id = |n: &str| g.nodes.iter().position(|m| m.name == n).unwrap();
    let mut part_of = vec![None; g.nodes.len()];
    part_of[id("stem")] = Some(0);
    part_of[id("left")] = Some(1);
    part_of[id("right")] = Some(2);
    for n in ["add", "gap", "flat", "fc"] {
        part_of[id(n)] = Some(3);
    }
    (part_of, vec![0, 1, 1, 2])
}

fn decoded(p: &PartModel) -> GraphProto {
    ModelProto::decode(p.bytes().as_slice())
        .unwrap()
        .graph
        .unwrap()
}

fn names(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.name.as_str()).collect()
}

#[test]
fn ort_nodes_go_to_the_part_of_the_ir_node_they_stand_for() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let p = split(&model(diamond_nodes()), &g, &part_of, &stage_of).unwrap();
    assert_eq!(p.len(), 4);
    let p: Vec<&PartModel> = p.iter().map(|p| p.as_ref().unwrap()).collect();
    // a reorder goes with the producer of its input; the blocked value
    // `b` crosses the boundary to the right lane without a reorder
    assert_eq!(
        names(&decoded(p[0])),
        ["stem_nchwc", "ReorderOutput_token_1"]
    );
    assert_eq!(p[0].inputs, ["input"]);
    assert_eq!(p[0].outputs, ["b", "stem"]);
    assert_eq!(names(&decoded(p[1])), ["left"]);
    assert_eq!(
        (p[1].inputs.as_slice(), p[1].outputs.as_slice()),
        (&["stem".to_string()][..], &["left".to_string()][..])
    );
    assert_eq!(
        names(&decoded(p[2])),
        ["right_nchwc", "ReorderOutput_token_2"]
    );
    assert_eq!(
        (p[2].inputs.clone(), p[2].outputs.clone()),
        (vec!["b".to_string()], vec!["right".to_string()])
    );
    // the graph's output is an output; an empty (absent) input is no input
    assert_eq!(p[3].inputs, ["left", "right"]);
    assert_eq!(p[3].outputs, ["logits"]);
    // each part keeps the operator sets, its own initializers and nodes'
    // domains
    let m = ModelProto::decode(p[2].bytes().as_slice()).unwrap();
    assert_eq!(m.opset_import[0].domain, "com.microsoft.nchwc");
    let g2 = m.graph.unwrap();
    let inits: Vec<&str> = g2.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(inits, ["w_right"]);
    assert_eq!(g2.node[0].domain, "com.microsoft.nchwc");
    assert_eq!(g2.input.len(), 1);
    assert_eq!(g2.output[0].name, "right");
}

#[test]
fn a_reorder_with_no_producer_goes_with_its_earliest_consumer() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    nodes[0] = node("stem_nchwc", &["x_blocked", "w_stem"], &["b"]);
    nodes.insert(0, node("ReorderInput", &["input"], &["x_blocked"]));
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    let first = p[0].as_ref().unwrap();
    assert_eq!(names(&decoded(first))[0], "ReorderInput");
    assert_eq!(first.inputs, ["input"]);
}

#[test]
fn a_part_whose_operations_were_fused_away_is_empty() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    // left fused into add
    nodes.remove(2);
    nodes[4] = node("add", &["stem", "w_left", "right"], &["add"]);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    assert!(p[1].is_none());
    assert_eq!(p[3].as_ref().unwrap().inputs, ["stem", "right"]);
}

/// ORT names a convolution that took in the residual sum after the
/// convolution, in one lane, while it reads the other lane's value: it
/// moves to the stage after both lanes, with its reader.
#[test]
fn a_node_reading_another_lane_s_value_moves_after_the_lanes() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    nodes[2] = node("left", &["stem", "w_left", "right"], &["left"]);
    nodes.swap(2, 4);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    assert!(p[1].is_none());
    let last = p[3].as_ref().unwrap();
    assert_eq!(names(&decoded(last)), ["left", "add", "fc"]);
    assert_eq!(last.inputs, ["stem", "right"]);
    // a node of ORT's own that mixes both lanes goes after them too, with
    // its reader (the first part of the next stage otherwise)
    let mut nodes = diamond_nodes();
    nodes.insert(5, node("Mix", &["left", "r"], &["mixed"]));
    nodes[6] = node("add", &["mixed", "right"], &["add"]);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    assert_eq!(
        names(&decoded(p[3].as_ref().unwrap())),
        ["Mix", "add", "fc"]
    );
    assert_eq!(p[1].as_ref().unwrap().outputs, ["left"]);
}

/// A node that reads a later part's value joins that part, and its
/// readers follow it there.
#[test]
fn a_node_reading_a_later_part_s_value_joins_it() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    // ORT names a node after `left` that reads the last stage's value
    nodes.pop();
    nodes.push(node("left_nchwc", &["add"], &["late"]));
    nodes.push(node("ReorderOutput_token_9", &["late"], &["late_plain"]));
    nodes.push(node("fc", &["add", "late_plain"], &["logits"]));
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    let last = names(&decoded(p[3].as_ref().unwrap())).join(" ");
    assert_eq!(last, "add left_nchwc ReorderOutput_token_9 fc", "{last}");
    assert_eq!(names(&decoded(p[1].as_ref().unwrap())), ["left"]);
}

#[test]
fn a_node_reading_two_lanes_of_the_last_stage_is_refused() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, _) = parts(&g);
    // left and right in the last stage
    let stage_of = vec![0, 1, 1, 0];
    let mut nodes = diamond_nodes();
    nodes[6] = node("fc", &["left", "r"], &["logits"]);
    let e = split(&model(nodes), &g, &part_of, &stage_of).unwrap_err();
    assert!(e.to_string().contains("two parts of the last stage"), "{e}");
}

#[test]
fn initializers_stored_outside_the_model_are_refused() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut m = model(diamond_nodes());
    m.graph.as_mut().unwrap().initializer[0].data_location = 1;
    let e = split(&m, &g, &part_of, &stage_of).unwrap_err();
    assert!(e.to_string().contains("w_stem"), "{e}");
}

/// Measured shapes go on the boundary values, the batch symbolic; the
/// graph's own input keeps the graph's declaration.
#[test]
fn boundary_values_take_the_shapes_a_pass_measured() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut m = model(diamond_nodes());
    let declared = ValueInfoProto {
        name: "input".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: vec![] }),
            }),
        }),
    };
    m.graph.as_mut().unwrap().input = vec![declared.clone()];
    let mut p = split(&m, &g, &part_of, &stage_of).unwrap();
    let first = p[0].as_mut().unwrap();
    assert_eq!(decoded(first).input, std::slice::from_ref(&declared));
    let shapes: HashMap<String, Vec<i64>> = [
        ("b".to_string(), vec![2, 16, 8, 8]),
        ("stem".to_string(), vec![2, 4, 8, 8]),
    ]
    .into();
    first.shape(&shapes);
    let g0 = decoded(first);
    // the input was not measured: as declared
    assert_eq!(g0.input, [declared]);
    let dims = |v: &ValueInfoProto| {
        v.r#type
            .as_ref()
            .unwrap()
            .tensor_type
            .as_ref()
            .unwrap()
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match d.value.as_ref().unwrap() {
                DimValue::DimParam(p) => p.clone(),
                DimValue::DimValue(v) => v.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let out: Vec<String> = g0.output.iter().map(dims).collect();
    assert_eq!(out, ["batch,16,8,8", "batch,4,8,8"]);
}

/// Nodes of ORT's own whose producers come later in the list (or are of
/// ORT's own too) are placed once their producers are.
#[test]
fn chains_of_ort_s_own_nodes_are_placed_in_any_order() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    // right's output goes through two reorders, listed in reverse
    nodes[4] = node("ReorderOutput_token_2", &["r2"], &["right"]);
    nodes.insert(4, node("ReorderInput_token_3", &["r"], &["r2"]));
    nodes.swap(4, 5);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    let right = names(&decoded(p[2].as_ref().unwrap())).join(" ");
    assert_eq!(
        right,
        "right_nchwc ReorderOutput_token_2 ReorderInput_token_3"
    );
    assert_eq!(p[2].as_ref().unwrap().outputs, ["right"]);
}

#[test]
fn a_part_without_a_stage_is_refused() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, mut stage_of) = parts(&g);
    stage_of.pop();
    let e = split(&model(diamond_nodes()), &g, &part_of, &stage_of).unwrap_err();
    assert!(e.to_string().contains("part 3 has no stage"), "{e}");
}

/// A node listed before the node it reads follows it when that one moves
/// to a later stage (a second pass).
#[test]
fn readers_follow_a_moved_node_in_any_order() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let mut nodes = diamond_nodes();
    // left reads right's value (it moves after the lanes); a reorder of
    // its output is listed first
    nodes[2] = node("left", &["stem", "w_left", "right"], &["left_b"]);
    nodes.swap(2, 4);
    nodes.insert(2, node("ReorderOutput_token_9", &["left_b"], &["left"]));
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    assert!(p[1].is_none());
    let last = names(&decoded(p[3].as_ref().unwrap())).join(" ");
    assert_eq!(last, "ReorderOutput_token_9 left add fc");
}

/// ORT fuses a branch point's slices into one node named after one lane's
/// slice, whose outputs keep every slice's name: it moves to the part
/// before the lanes (where every lane reads it), whatever reads it.
#[test]
fn a_node_computing_another_lane_s_values_moves_before_the_lanes() {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let fused = |inputs: &[&str]| {
        vec![
            node("stem_nchwc", &["input", "w_stem"], &["b"]),
            node("ReorderOutput_token_1", &["b"], &["stem"]),
            node("ReorderInput_token_5", &["stem"], &["stem_blocked"]),
            node("right/GatherSliceToSplitFusion", inputs, &["left", "right"]),
            node("ReorderInput_token_6", &["left"], &["left_blocked"]),
            node("add", &["left_blocked", "right"], &["add"]),
            node("fc", &["add", ""], &["logits"]),
        ]
    };
    // its operand through a reorder of ORT's own
    let p = split(&model(fused(&["stem_blocked"])), &g, &part_of, &stage_of).unwrap();
    assert!(p[1].is_none() && p[2].is_none());
    let first = p[0].as_ref().unwrap();
    assert_eq!(
        names(&decoded(first)),
        [
            "stem_nchwc",
            "ReorderOutput_token_1",
            "ReorderInput_token_5",
            "right/GatherSliceToSplitFusion",
            "ReorderInput_token_6"
        ]
    );
    assert_eq!(first.outputs, ["right", "left_blocked"]);
    // one that reads a value of its own lane stays there
    let mut nodes = fused(&["r"]);
    nodes[2] = node("right_nchwc", &["stem", "w_right"], &["r"]);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    assert_eq!(
        names(&decoded(p[0].as_ref().unwrap())),
        ["stem_nchwc", "ReorderOutput_token_1"]
    );
    assert_eq!(
        names(&decoded(p[2].as_ref().unwrap())),
        [
            "right_nchwc",
            "right/GatherSliceToSplitFusion",
            "ReorderInput_token_6"
        ]
    );
}

/// `nodes` as ORT's optimised diamond, split by [`parts`]: every part.
fn split_diamond(nodes: Vec<NodeProto>) -> Vec<PartModel> {
    let g = crate::trace::tests::diamond_of(4, 8);
    let (part_of, stage_of) = parts(&g);
    let p = split(&model(nodes), &g, &part_of, &stage_of).unwrap();
    p.into_iter()
        .map(|p| p.expect("a part with nodes"))
        .collect()
}

/// A node of ORT's own with no producer whose consumers lie in two stages
/// (a reorder of the input read by the stem and by a lane) goes with the
/// earliest; its value crosses to the later part as an input.
#[test]
fn an_ort_node_read_in_two_stages_goes_with_the_earliest_reader() {
    let mut nodes = diamond_nodes();
    nodes[0] = node("stem_nchwc", &["x_blocked", "w_stem"], &["b"]);
    nodes[2] = node("left", &["stem", "w_left", "x_blocked"], &["left"]);
    nodes.insert(0, node("ReorderInput", &["input"], &["x_blocked"]));
    let p = split_diamond(nodes);
    assert_eq!(
        names(&decoded(&p[0])),
        ["ReorderInput", "stem_nchwc", "ReorderOutput_token_1"]
    );
    assert_eq!(p[0].outputs, ["x_blocked", "b", "stem"]);
    assert_eq!(names(&decoded(&p[1])), ["left"]);
    assert_eq!(p[1].inputs, ["stem", "x_blocked"]);
}

/// A node of ORT's own after a producer, read by a lane and by the tail
/// (two stages), stays with its producer; both readers take its value.
#[test]
fn an_ort_node_after_its_producer_serves_readers_in_two_stages() {
    let mut nodes = diamond_nodes();
    nodes[6] = node("fc", &["add", "stem"], &["logits"]);
    let p = split_diamond(nodes);
    assert_eq!(
        names(&decoded(&p[0])),
        ["stem_nchwc", "ReorderOutput_token_1"]
    );
    assert_eq!(p[0].outputs, ["b", "stem"]);
    assert_eq!(p[1].inputs, ["stem"]);
    assert_eq!(names(&decoded(&p[3])), ["add", "fc"]);
    assert_eq!(p[3].inputs, ["left", "right", "stem"]);
}

/// A node of ORT's own that joins both lanes (reads each lane's value) and
/// is read by two stages after them goes after the lanes, never into one
/// of them.
#[test]
fn an_ort_node_joining_two_lanes_goes_after_them() {
    let mut nodes = diamond_nodes();
    // ORT's own sum of the lanes, read by add and by fc
    nodes.insert(5, node("Sum_token_9", &["left", "right"], &["s"]));
    nodes[6] = node("add", &["s", "left"], &["add"]);
    nodes[7] = node("fc", &["add", "s"], &["logits"]);
    let p = split_diamond(nodes);
    assert_eq!(names(&decoded(&p[1])), ["left"]);
    assert_eq!(
        names(&decoded(&p[2])),
        ["right_nchwc", "ReorderOutput_token_2"]
    );
    assert_eq!(names(&decoded(&p[3])), ["Sum_token_9", "add", "fc"]);
}
