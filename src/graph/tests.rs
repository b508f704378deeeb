//! Tests of the graph IR.

use super::*;

fn conv(out: usize, k: usize, s: usize, p: usize, g: usize) -> Op {
    Op::Conv {
        out,
        kernel: [k; 2],
        stride: [s; 2],
        pad: [p; 2],
        groups: g,
        bias: false,
        params: ParamRef::whole("c"),
    }
}

#[test]
fn conv_shapes_follow_pytorch() {
    let x = Shape::new(3, 224, 224);
    assert_eq!(
        infer(&conv(64, 7, 2, 3, 1), &[x]),
        Ok(Shape::new(64, 112, 112))
    );
    let m = Op::MaxPool {
        kernel: 3,
        stride: 2,
        pad: 1,
        ceil: false,
    };
    assert_eq!(
        infer(&m, &[Shape::new(64, 112, 112)]),
        Ok(Shape::new(64, 56, 56))
    );
    let m7 = Op::MaxPool {
        kernel: 7,
        stride: 7,
        pad: 0,
        ceil: false,
    };
    assert_eq!(
        infer(&m7, &[Shape::new(8, 32, 32)]),
        Ok(Shape::new(8, 4, 4))
    );
    assert!(infer(&m7, &[Shape::new(8, 6, 6)])
        .unwrap_err()
        .contains("smaller"));
}

#[test]
fn ceil_mode_and_rectangular_windows_follow_pytorch() {
    let pool = |k, s, p, ceil| Op::MaxPool {
        kernel: k,
        stride: s,
        pad: p,
        ceil,
    };
    let x = Shape::new(4, 112, 112);
    assert_eq!(
        infer(&pool(3, 2, 0, false), &[x]),
        Ok(Shape::new(4, 55, 55))
    );
    assert_eq!(infer(&pool(3, 2, 0, true), &[x]), Ok(Shape::new(4, 56, 56)));
    // nn.MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5x5 gives 3x3:
    // a fourth window would start in the right padding.
    let five = Shape::new(1, 5, 5);
    assert_eq!(
        infer(&pool(2, 2, 1, true), &[five]),
        Ok(Shape::new(1, 3, 3))
    );
    assert_eq!(
        infer(&pool(3, 2, 0, true), &[five]),
        Ok(Shape::new(1, 2, 2))
    );
    let wide = Op::Conv {
        out: 6,
        kernel: [1, 7],
        stride: [1, 2],
        pad: [0, 3],
        groups: 1,
        bias: true,
        params: ParamRef::whole("w"),
    };
    assert_eq!(
        infer(&wide, &[Shape::new(3, 17, 17)]),
        Ok(Shape::new(6, 17, 9))
    );
    let mut g = Graph::new("t", Shape::new(3, 17, 17));
    g.add("w", wide, &[0]).unwrap();
    assert_eq!(g.params["w.weight"], vec![6, 3, 1, 7]);
    let avg = Op::AvgPool {
        kernel: 3,
        stride: 1,
        pad: 1,
        count_include_pad: false,
    };
    assert_eq!(infer(&avg, &[x]), Ok(x));
    let shuffle = Op::ChannelShuffle { groups: 3 };
    assert!(infer(&shuffle, &[x]).unwrap_err().contains("divisible"));
    assert_eq!(infer(&Op::ChannelShuffle { groups: 2 }, &[x]), Ok(x));
}

#[test]
fn bad_wires_name_the_node() {
    let mut g = Graph::new("t", Shape::new(3, 8, 8));
    let a = g.add("a", conv(4, 3, 1, 1, 1), &[0]).unwrap();
    let err = g.add("sum", Op::Add, &[0, a]).unwrap_err();
    assert!(err.to_string().contains("node 'sum' (add)"), "{err}");
    assert!(matches!(
        g.add("x", conv(5, 1, 1, 0, 2), &[a]),
        Err(GraphError::Shape { .. })
    ));
    assert_eq!(
        g.add("a", Op::Relu, &[a]),
        Err(GraphError::DuplicateName("a".into()))
    );
    assert!(matches!(
        g.add("r", Op::Relu, &[9]),
        Err(GraphError::BadInput { .. })
    ));
}

#[test]
fn params_are_declared_once() {
    let mut g = Graph::new("t", Shape::new(3, 8, 8));
    let a = g.add("a", conv(4, 3, 1, 1, 1), &[0]).unwrap();
    assert_eq!(g.params["c.weight"], vec![4, 3, 3, 3]);
    let err = g.add("b", conv(5, 3, 1, 1, 1), &[a]).unwrap_err();
    assert!(matches!(err, GraphError::ParamConflict { .. }));
}

#[test]
fn names_stay_unique_in_a_long_graph() {
    let mut g = Graph::new("t", Shape::new(3, 8, 8));
    let mut last = 0;
    for i in 0..20_000 {
        last = g.add(&format!("relu{i}"), Op::Relu, &[last]).unwrap();
    }
    assert_eq!(g.nodes.len(), 20_001);
    for taken in ["input", "relu0", "relu19999"] {
        assert_eq!(
            g.add(taken, Op::Relu, &[last]),
            Err(GraphError::DuplicateName(taken.into()))
        );
    }
    // a refused node leaves no trace: its name is still free
    assert!(g.add("x", Op::Add, &[last]).is_err());
    g.add("x", Op::Relu, &[last]).unwrap();
    let copy = g.clone();
    assert_eq!(
        copy.clone().add("x", Op::Relu, &[last]),
        Err(GraphError::DuplicateName("x".into()))
    );
}
