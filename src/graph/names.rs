//! Mapping a framework's operation names back to the IR's nodes: the
//! rule every trace and ORT's optimised graph share.

use std::collections::HashMap;

use super::{Graph, NodeId};

/// Characters after which a framework's name may carry its own suffix to
/// an IR node's name: `layer1.0.conv1/perm` (TensorFlow helpers),
/// `stem.conv_fused` (fusions).
const SEPARATORS: &[char] = &['/', '_', ':', '.', '-'];

/// The IR node a framework's operation name stands for: the node of that
/// exact name, else the longest node name the operation's name starts with
/// followed by a separator; `None` for framework-internal work.
pub fn ir_node<'a>(names: &HashMap<&'a str, NodeId>, name: &str) -> Option<(&'a str, NodeId)> {
    let lookup = |n: &str| names.get_key_value(n).map(|(k, v)| (*k, *v));
    lookup(name).or_else(|| {
        name.char_indices()
            .rev()
            .filter(|(_, c)| SEPARATORS.contains(c))
            .find_map(|(i, _)| lookup(&name[..i]))
    })
}

/// The IR's operations by name (the input is none), for [`ir_node`].
pub fn operation_names(graph: &Graph) -> HashMap<&str, NodeId> {
    graph
        .nodes
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, n)| (n.name.as_str(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user's model can name one node after another's prefix (`a` and
    /// `a.b`): an operation of `a.b` belongs to `a.b`, the longest name it
    /// starts with, never to `a`.
    #[test]
    fn the_longest_node_name_wins() {
        let names: HashMap<&str, NodeId> = [("a", 1), ("a.b", 2), ("a.b.c", 3)].into();
        let at = |op: &str| ir_node(&names, op).map(|(_, n)| n);
        assert_eq!(at("a.b"), Some(2));
        assert_eq!(at("a.b/conv"), Some(2));
        assert_eq!(at("a.b.c_fused/relu"), Some(3));
        // `a.bx` is not an operation of `a.b`: a name ends at a separator
        assert_eq!(at("a.bx"), Some(1));
        assert_eq!(at("a/x"), Some(1));
        assert_eq!(at("ab"), None);
        assert_eq!(at("z.a.b"), None);
    }
}
