"""Write a TFLM library's op table (tinygen/data/tflm_ops_<name>.json) from its sources.

The table maps each builtin op to the `MicroMutableOpResolver` method that registers it, read
from the library's own `tensorflow/lite/micro/micro_mutable_op_resolver.h` (every
`TfLiteStatus AddXxx(...)` whose body calls `AddBuiltin(BuiltinOperator_YYY, ...)`), and each
custom op (`AddCustom("NAME", ...)` inside an `AddXxx`). Run once per fetched library:

    python3 tests/tflm_ops_table.py SRC_ROOT NAME --source "owner/repo VERSION path" \
        --revision COMMIT [--write]

SRC_ROOT is the folder that holds `tensorflow/` (e.g. a library's `src/`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = Path("tensorflow/lite/micro/micro_mutable_op_resolver.h")
METHOD = re.compile(r"TfLiteStatus\s+(Add\w+)\s*\(")
BUILTIN = re.compile(r"AddBuiltin\(\s*BuiltinOperator_(\w+)")
CUSTOM = re.compile(r'AddCustom\(\s*"(\w+)"|AddCustom\(\s*\n?\s*"(\w+)"')
CUSTOM_NAME = re.compile(r'"(\w+)"')


def parse(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(builtin op -> method, custom op -> method) of one micro_mutable_op_resolver.h."""
    builtin: dict[str, str] = {}
    custom: dict[str, str] = {}
    starts = [(m.start(), m.group(1)) for m in METHOD.finditer(text)]
    for (pos, name), nxt in zip(starts, [*(s for s, _ in starts[1:]), len(text)]):
        body = text[pos:nxt]
        if name in ("AddBuiltin", "AddCustom"):
            continue
        found = BUILTIN.search(body)
        if found and found.group(1) != "CUSTOM":
            builtin.setdefault(found.group(1), name)
        elif "AddCustom(" in body:
            call = body[body.index("AddCustom("):]
            quoted = CUSTOM_NAME.search(call)
            if quoted:
                custom.setdefault(quoted.group(1), name)
    return dict(sorted(builtin.items())), dict(sorted(custom.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("name")
    ap.add_argument("--source", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    builtin, custom = parse((args.root / HEADER).read_text())
    table = {"builtin": builtin, "custom": custom, "int8": {},
             "note": "op name -> MicroMutableOpResolver method (tests/tflm_ops_table.py)",
             "revision": args.revision, "source": f"{args.source} {HEADER}"}
    text = json.dumps(table, indent=2, sort_keys=True) + "\n"
    if args.write:
        (REPO / "tinygen" / "data" / f"tflm_ops_{args.name}.json").write_text(text)
    print(f"{args.name}: {len(builtin)} builtin, {len(custom)} custom ops", file=sys.stderr)
    if not args.write:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
