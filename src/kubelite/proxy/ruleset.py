"""The nftables objects a Service contributes, and the transaction text that writes them.

A :class:`Fragment` holds one Service's chains (name -> rules), ClientIP affinity sets
(name -> timeout) and elements of the shared maps/sets (map -> key -> value; value ""
for plain sets).  :class:`Tx` accumulates ``nft -f`` commands in the order nft needs
them inside one atomic transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class Fragment:
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=dict)

    def element(self, map_name: str, key: str, value: str = "") -> None:
        self.elements.setdefault(map_name, {})[key] = value


def _element_text(key: str, value: str) -> str:
    return f"{key} : {value}" if value else key


class Tx:
    """Commands of one ``nft -f -`` transaction on table ``ip <table>``."""

    def __init__(self, table: str) -> None:
        self.prefix = f"ip {table}"
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def add_table(self) -> None:
        self.add(f"add table {self.prefix}")

    def add_chain(self, name: str, spec: str = "") -> None:
        self.add(f"add chain {self.prefix} {name}" + (f" {{ {spec} }}" if spec else ""))

    def flush_chain(self, name: str) -> None:
        self.add(f"flush chain {self.prefix} {name}")

    def delete_chain(self, name: str) -> None:
        self.add(f"delete chain {self.prefix} {name}")

    def add_rules(self, chain: str, rules: Iterable[str]) -> None:
        for rule in rules:
            self.add(f"add rule {self.prefix} {chain} {rule}")

    def add_affinity_set(self, name: str, timeout: int) -> None:
        decl = f"type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ;"
        self.add(f"add set {self.prefix} {name} {{ {decl} }}")

    def delete_set(self, name: str) -> None:
        self.add(f"delete set {self.prefix} {name}")

    def flush_set(self, name: str) -> None:
        self.add(f"flush set {self.prefix} {name}")

    def add_elements(self, map_name: str, elements: Mapping[str, str]) -> None:
        if elements:
            body = ", ".join(_element_text(k, v) for k, v in elements.items())
            self.add(f"add element {self.prefix} {map_name} {{ {body} }}")

    def delete_elements(self, map_name: str, keys: Iterable[str]) -> None:
        body = ", ".join(keys)
        if body:
            self.add(f"delete element {self.prefix} {map_name} {{ {body} }}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""
