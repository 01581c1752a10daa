"""A model of what is applied to the kernel table, and the diffs that move it forward.

Like kube-proxy's partial syncs: the model remembers each Service's applied
:class:`~kubelite.proxy.ruleset.Fragment`, so a sync rewrites only the chains whose rules
changed and adds/deletes only the map elements that changed.  A full sync rewrites
every chain and map in one transaction and deletes chains/sets the kernel has that the
model does not want (after restarts or failed applies).  Affinity sets are never flushed
(their dynamic elements are the session state).

Map keys that two Services both claim (e.g. two LoadBalancers on one ingress IP and
port) go to the Service whose key sorts first, deterministically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubelite.proxy.render import BaseChain
from kubelite.proxy.ruleset import Fragment, Tx

Owners = dict[str, str]  # service key -> value it wants for one map key


@dataclass
class Plan:
    """One transaction and the model changes to commit once nft accepted it."""

    text: str
    fragments: dict[str, Fragment | None]  # service key -> applied fragment (None = gone)
    owners: dict[tuple[str, str], Owners] = field(default_factory=dict)
    elements: dict[tuple[str, str], str | None] = field(default_factory=dict)
    full: bool = False
    changed: set[str] = field(default_factory=set)  # services whose kernel objects changed

    @property
    def empty(self) -> bool:
        return not self.text


def _effective(owners: Owners) -> str | None:
    return owners[min(owners)] if owners else None


class TableModel:
    def __init__(self, table: str, chains: dict[str, BaseChain], maps: dict[str, str]) -> None:
        self.table = table
        self.base_chains = chains
        self.base_maps = maps
        self.fragments: dict[str, Fragment] = {}
        self.owners: dict[tuple[str, str], Owners] = {}
        self.elements: dict[str, dict[str, str]] = {m: {} for m in maps}

    # ------------------------------------------------------------------ partial

    def plan_partial(self, updates: Mapping[str, Fragment | None]) -> Plan:
        """The transaction that moves the services in ``updates`` to their new fragments."""
        tx = Tx(self.table)
        plan = Plan("", dict(updates))
        stale_chains: list[str] = []
        stale_sets: list[str] = []
        rewrite: list[tuple[str, tuple[str, ...], bool]] = []  # chain, rules, is new
        for key, new in updates.items():
            old = self.fragments.get(key) or Fragment()
            new = new or Fragment()
            if self._diff_objects(old, new, rewrite, stale_chains, stale_sets, tx):
                plan.changed.add(key)
        for chain, _, is_new in rewrite:
            if is_new:
                tx.add_chain(chain)
        for chain, rules, is_new in rewrite:
            if not is_new:
                tx.flush_chain(chain)
            tx.add_rules(chain, rules)
        plan.changed |= self._diff_elements(updates, plan, tx)
        for chain in stale_chains:
            tx.flush_chain(chain)
        for chain in stale_chains:
            tx.delete_chain(chain)
        for name in stale_sets:
            tx.delete_set(name)
        plan.text = tx.text()
        return plan

    @staticmethod
    def _diff_objects(
        old: Fragment,
        new: Fragment,
        rewrite: list[tuple[str, tuple[str, ...], bool]],
        stale_chains: list[str],
        stale_sets: list[str],
        tx: Tx,
    ) -> bool:
        changed = False
        for name, timeout in new.sets.items():
            if name not in old.sets:
                tx.add_affinity_set(name, timeout)
                changed = True
        for chain, rules in new.chains.items():
            before = old.chains.get(chain)
            if before != rules:
                rewrite.append((chain, rules, before is None))
                changed = True
        gone = [c for c in old.chains if c not in new.chains]
        stale_chains.extend(gone)
        dropped = [s for s in old.sets if s not in new.sets]
        stale_sets.extend(dropped)
        return changed or bool(gone) or bool(dropped)

    def _touched_owners(self, updates: Mapping[str, Fragment | None]) -> dict[tuple[str, str], Owners]:
        """New owner sets of every map key that an old or new fragment in ``updates`` names."""
        touched: dict[tuple[str, str], Owners] = {}
        for key, new in updates.items():
            old = self.fragments.get(key)
            for frag, keep in ((old, False), (new, True)):
                for map_name, elems in (frag.elements if frag else {}).items():
                    for elem, value in elems.items():
                        slot = (map_name, elem)
                        owners = touched.get(slot)
                        if owners is None:
                            owners = touched[slot] = dict(self.owners.get(slot, {}))
                        if keep:
                            owners[key] = value
                        else:
                            owners.pop(key, None)
        return touched

    def _diff_elements(self, updates: Mapping[str, Fragment | None], plan: Plan, tx: Tx) -> set[str]:
        """Delete/add the map elements whose effective value changes; returns the services involved."""
        touched = self._touched_owners(updates)
        adds: dict[str, dict[str, str]] = {}
        dels: dict[str, list[str]] = {}
        changed: set[str] = set()
        for slot, owners in touched.items():
            map_name, elem = slot
            now = self.elements[map_name].get(elem)
            want = _effective(owners)
            plan.owners[slot] = owners
            if now == want:
                continue
            plan.elements[slot] = want
            changed.update(owners or self.owners.get(slot, {}))
            if now is not None:
                dels.setdefault(map_name, []).append(elem)
            if want is not None:
                adds.setdefault(map_name, {})[elem] = want
        for map_name, gone in dels.items():
            tx.delete_elements(map_name, gone)
        for map_name, add in adds.items():
            tx.add_elements(map_name, add)
        return changed

    # ------------------------------------------------------------------ full

    def plan_full(
        self, fragments: Mapping[str, Fragment], kernel_chains: set[str], kernel_sets: set[str]
    ) -> Plan:
        """Rewrite everything; delete kernel chains/sets that no fragment wants."""
        tx = Tx(self.table)
        tx.add_table()
        sets: dict[str, int] = {}
        chains: dict[str, tuple[str, ...]] = {c: b.rules for c, b in self.base_chains.items()}
        owners: dict[tuple[str, str], Owners] = {}
        for key in sorted(fragments):
            frag = fragments[key]
            sets.update(frag.sets)
            chains.update(frag.chains)
            for map_name, elems in frag.elements.items():
                for elem, value in elems.items():
                    owners.setdefault((map_name, elem), {})[key] = value
        for name, timeout in sets.items():
            tx.add_affinity_set(name, timeout)
        for name, decl in self.base_maps.items():
            kind = "map" if ": verdict" in decl else "set"
            tx.add(f"add {kind} ip {self.table} {name} {{ {decl} }}")
            tx.add(f"flush {kind} ip {self.table} {name}")
        for name in chains:
            base = self.base_chains.get(name)
            tx.add_chain(name, base.spec if base else "")
            tx.flush_chain(name)
        for name, rules in chains.items():
            tx.add_rules(name, rules)
        by_map: dict[str, dict[str, str]] = {m: {} for m in self.base_maps}
        for (map_name, elem), who in owners.items():
            won = _effective(who)
            if won is not None:
                by_map[map_name][elem] = won
        for map_name, elems in by_map.items():
            tx.add_elements(map_name, elems)
        stale = sorted(kernel_chains - set(chains))
        for name in stale:
            tx.flush_chain(name)
        for name in stale:
            tx.delete_chain(name)
        for name in sorted(kernel_sets - set(sets) - set(self.base_maps)):
            tx.delete_set(name)
        plan = Plan(tx.text(), dict(fragments), owners, full=True, changed=set(fragments))
        plan.elements = {(m, e): v for m, elems in by_map.items() for e, v in elems.items()}
        return plan

    # ------------------------------------------------------------------ commit

    def commit(self, plan: Plan) -> None:
        """Record that ``plan`` was applied to the kernel."""
        if plan.full:
            self.fragments = {k: f for k, f in plan.fragments.items() if f is not None}
            self.owners = dict(plan.owners)
            self.elements = {m: {} for m in self.base_maps}
            for (map_name, elem), value in plan.elements.items():
                if value is not None:
                    self.elements[map_name][elem] = value
            return
        for key, frag in plan.fragments.items():
            if frag is None or not (frag.chains or frag.sets or frag.elements):
                self.fragments.pop(key, None)
            else:
                self.fragments[key] = frag
        for slot, owners in plan.owners.items():
            if owners:
                self.owners[slot] = owners
            else:
                self.owners.pop(slot, None)
        for (map_name, elem), value in plan.elements.items():
            if value is None:
                self.elements[map_name].pop(elem, None)
            else:
                self.elements[map_name][elem] = value
