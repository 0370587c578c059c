"""YAML as every MotionClone file reads it: safe tags only, and no aliases.

An alias (`*name`) repeats what its anchor holds without writing it out again, so a few hundred
bytes of nested aliases ("billion laughs") expand to gigabytes once anything walks or serialises
the data: a 570-byte watch-folder sidecar took a daemon down. Settings files never need them, so
the first alias is refused with its line, before anything is built.
"""

from __future__ import annotations

from typing import Any

import yaml


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader that stops at the first alias event."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not accepted; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_yaml_with_nodes(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML text's node tree (where each key sits) and the data built from it, in one parse;
    yaml.YAMLError (with `problem_mark`) for bad syntax or an alias."""
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()
