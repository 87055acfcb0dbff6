"""Tiny BVH files for the mocap converter tests: the HIERARCHY part written from (joint, parent, offset) rows."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def bvh_hierarchy(joints: Sequence[tuple], ends: Mapping[str, Sequence[float]], channels: Callable[[str, int], str],
                  digits: int, rename: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(lines from HIERARCHY to the root's closing brace, joint names in file order) for `joints` [(name, parent or
    None, offset)] with the root first, end sites `ends` {joint: offset}, `channels(name, depth)` the words after
    CHANNELS, offsets with `digits` decimals; `rename` changes only the names written."""
    rename = rename or {}
    children: dict = {}
    for name, parent, _ in joints:
        children.setdefault(parent, []).append(name)
    offset = {name: o for name, _, o in joints}
    lines, order = ["HIERARCHY"], []

    def numbers(values) -> str:
        return " ".join(f"{v:.{digits}f}" for v in values)

    def emit(name: str, depth: int) -> None:
        pad = "\t" * depth
        lines.extend([f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {rename.get(name, name)}", pad + "{",
                      pad + "\tOFFSET " + numbers(offset[name]), pad + "\tCHANNELS " + channels(name, depth)])
        order.append(name)
        for child in children.get(name, []):
            emit(child, depth + 1)
        if name in ends:
            lines.extend([pad + "\tEnd Site", pad + "\t{", pad + "\t\tOFFSET " + numbers(ends[name]), pad + "\t}"])
        lines.append(pad + "}")

    emit(joints[0][0], 0)
    return lines, order
