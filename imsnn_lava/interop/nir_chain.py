"""The structure a NIR graph must have for imsnn: one chain from the Input to the Output.

`chain(graph, where)` returns the node names in order, or raises NIRFileError naming the node:
unsupported node types (nested graphs included), edges to missing nodes, cycles (the edge that
closes one, found depth-first from the Input), several Input or Output nodes, nodes with
several inputs or outputs, nodes off the path.
"""

from __future__ import annotations

from imsnn_lava.interop.nir_file import SUPPORTED_TYPES, NIRFileError


def chain(graph, where: str) -> list[str]:
    """Node names from the Input to the Output; refuses anything but one simple chain."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    if not isinstance(nodes, dict) or not nodes:
        raise NIRFileError(f"{where}: the graph has no nodes")
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED_TYPES:
            why = ("a nested graph (how NIR writers store recurrent layers)" if kind == "NIRGraph"
                   else "this node type")
            raise NIRFileError(f"{where}: node '{name}' ({kind}): {why} is not supported "
                               f"(supported: {', '.join(SUPPORTED_TYPES)})")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise NIRFileError(f"{where}: edge ('{a}', '{b}'): no node '{end}'")
        succ[a].append(b)
        pred[b].append(a)
    back = back_edge(nodes, succ)
    if back:
        raise NIRFileError(f"{where}: node '{back[1]}': the edge ('{back[0]}', '{back[1]}') "
                           "closes a cycle (a recurrent connection); only feed-forward graphs "
                           "are supported")
    for kind in ("Input", "Output"):
        found = [n for n, node in nodes.items() if type(node).__name__ == kind]
        if len(found) != 1:
            raise NIRFileError(f"{where}: the graph has {len(found)} {kind} nodes "
                               f"({', '.join(found) or 'none'}); exactly one is supported")
    for n in nodes:
        if len(pred[n]) > 1:
            raise NIRFileError(f"{where}: node '{n}' has {len(pred[n])} inputs "
                               f"({', '.join(pred[n])}); only chains are supported")
        if len(succ[n]) > 1:
            raise NIRFileError(f"{where}: node '{n}' feeds {len(succ[n])} nodes "
                               f"({', '.join(succ[n])}); only chains are supported")
    start = next(n for n, node in nodes.items() if type(node).__name__ == "Input")
    order = [start]
    while succ[order[-1]]:
        order.append(succ[order[-1]][0])
    if type(nodes[order[-1]]).__name__ != "Output":
        raise NIRFileError(f"{where}: node '{order[-1]}': the chain from the input ends here, "
                           "not at the Output node")
    stray = [n for n in nodes if n not in order]
    if stray:
        raise NIRFileError(f"{where}: node '{stray[0]}' is not on the path from the Input to "
                           "the Output")
    return order


def back_edge(nodes: dict, succ: dict) -> tuple[str, str] | None:
    """The first edge that closes a cycle, searching depth-first from the Input nodes."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    roots = [n for n, node in nodes.items() if type(node).__name__ == "Input"] + list(nodes)
    for root in roots:
        if root in state:
            continue
        state[root], stack = 1, [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                return node, child
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return None
