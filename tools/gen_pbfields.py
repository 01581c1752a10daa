"""Generate ``src/kubelite/apiserver/pbfields.json`` from the Kubernetes protobuf sources.

Reads (with ``git show`` from local clones of kubernetes/api and kubernetes/apimachinery at
one tag) every GA ``generated.proto`` for field numbers and types, and the Go ``types.go``
files next to them for the JSON facts the .proto lacks: the JSON name, whether the field is
``json:",inline"``, and whether a zero value survives JSON encoding (pointer fields, or
fields without ``omitempty``).  Only those facts are written out; no source text is kept.

Usage: python tools/gen_pbfields.py API_REPO APIMACHINERY_REPO TAG > pbfields.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

APIMACHINERY_PKGS = ["pkg/apis/meta/v1", "pkg/api/resource", "pkg/util/intstr", "pkg/runtime"]
SKIP_GO = ("_test.go", "generated.pb.go", "zz_generated", "swagger_doc_generated.go")

MSG_RE = re.compile(r"^message (\w+) \{")
FIELD_RE = re.compile(r"^\s*(optional|repeated|required) ([.\w]+) (\w+) = (\d+)")
MAP_RE = re.compile(r"^\s*map<string, ([.\w]+)> (\w+) = (\d+)")
STRUCT_RE = re.compile(r"^type (\w+) struct \{")
GO_FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([*\[\]\w.]+)\s+`(.*)`")
SCALARS = {"string", "bytes", "bool", "int32", "int64", "double", "float", "uint32", "uint64"}


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def packages(api: str, tag: str) -> list[tuple[str, str, str]]:
    """(repo, dir, proto package) for every GA group-version plus the apimachinery types."""
    out = []
    for path in git(api, "ls-tree", "-r", "--name-only", tag).split():
        d = path.rsplit("/", 1)[0]
        if path.endswith("/generated.proto") and re.fullmatch(r"[\w]+/v\d+", d):
            out.append((api, d, "k8s.io.api." + d.replace("/", ".")))
    return out


def parse_proto(text: str, pkg: str) -> dict[str, dict[str, list[object]]]:
    msgs: dict[str, dict[str, list[object]]] = {}
    cur: dict[str, list[object]] | None = None
    for line in text.splitlines():
        if m := MSG_RE.match(line):
            cur = msgs.setdefault(f"{pkg}.{m.group(1)}", {})
        elif cur is not None and (m := MAP_RE.match(line)):
            cur[m.group(3)] = [m.group(2), "map", qualify(m.group(1), pkg), ""]
        elif cur is not None and (m := FIELD_RE.match(line)):
            label, typ, name, num = m.groups()
            flags = "r" if label == "repeated" else ""
            if typ in SCALARS:
                cur[num] = [name, typ, None, flags]
            else:
                cur[num] = [name, "message", qualify(typ, pkg), flags]
    return msgs


def qualify(typ: str, pkg: str) -> str:
    if typ in SCALARS:
        return typ
    return typ[1:] if typ.startswith(".") else f"{pkg}.{typ}"


def parse_go(text: str) -> dict[tuple[str, str], tuple[str, bool, bool]]:
    """(struct, field number) -> (json name, inline, zero value kept by JSON)."""
    out: dict[tuple[str, str], tuple[str, bool, bool]] = {}
    struct = ""
    for line in text.splitlines():
        if m := STRUCT_RE.match(line):
            struct = m.group(1)
            continue
        m = GO_FIELD_RE.match(line)
        if not struct or not m or 'protobuf:"' not in m.group(3):
            continue
        tags = dict(re.findall(r'(\w+):"([^"]*)"', m.group(3)))
        pparts = tags["protobuf"].split(",")
        if len(pparts) < 2 or not pparts[1].isdigit():
            continue
        num = pparts[1]
        jparts = tags.get("json", "").split(",")
        inline = "inline" in jparts[1:] and not jparts[0]
        keep = m.group(2).startswith("*") or "omitempty" not in jparts[1:]
        out[(struct, num)] = (jparts[0], inline, keep)
    return out


def load(repo: str, tag: str, d: str, pkg: str, msgs: dict[str, dict[str, list[object]]]) -> None:
    parsed = parse_proto(git(repo, "show", f"{tag}:{d}/generated.proto"), pkg)
    go: dict[tuple[str, str], tuple[str, bool, bool]] = {}
    for path in git(repo, "ls-tree", "--name-only", f"{tag}:{d}").split():
        if path.endswith(".go") and not path.endswith(SKIP_GO) and "zz_generated" not in path:
            go.update(parse_go(git(repo, "show", f"{tag}:{d}/{path}")))
    for full, fields in parsed.items():
        short = full.rsplit(".", 1)[1]
        for num, entry in fields.items():
            jname, inline, keep = go.get((short, num), (str(entry[0]), False, False))
            entry[0] = jname if jname not in ("", "-") else str(entry[0])
            entry[3] = str(entry[3]) + ("i" if inline else "") + ("z" if keep else "")
    msgs.update(parsed)


def main() -> None:
    api, machinery, tag = sys.argv[1:4]
    msgs: dict[str, dict[str, list[object]]] = {}
    for repo, d, pkg in packages(api, tag):
        load(repo, tag, d, pkg, msgs)
    for d in APIMACHINERY_PKGS:
        load(machinery, tag, d, "k8s.io.apimachinery." + d.replace("/", "."), msgs)
    doc = {
        "_note": (
            f"Field-number tables derived from kubernetes/api and kubernetes/apimachinery {tag} "
            "(generated.proto and types.go of every GA group-version, meta/v1, resource, intstr, "
            "runtime), Copyright The Kubernetes Authors, Apache License 2.0. "
            "Entry: field number -> [json name, type, message/map value type, flags]; flags: "
            "r=repeated, i=json inline, z=zero value kept (Go pointer or no omitempty). "
            "Regenerate with tools/gen_pbfields.py."
        ),
        "messages": msgs,
    }
    # one message per line keeps diffs readable
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(msgs.items())]
    sys.stdout.write('{"_note": ' + json.dumps(doc["_note"]) + ',\n"messages": {\n')
    sys.stdout.write(",\n".join(lines) + "\n}}\n")


if __name__ == "__main__":
    main()
