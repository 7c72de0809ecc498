#!/usr/bin/env python3
"""Checks qmtl's layering from the include graph (docs/architecture.md).

Each part of src/qmtl/ may include only the parts below it:

  core <- metrics <- policy <- lifecycle <- store <- world <- execution
       <- scheduler <- server <- cli
  broker <- sdk build on core and metrics only (sdk also on broker);
  python (the extension of the Python package) on core, metrics, policy,
  broker and sdk;
  the server does not use the scheduler (the serve command runs both).

A part that includes one it may not, links one it may not (its CMakeLists'
DEPS), or a folder that is not a known part, fails the check with the file
and line. Usage: check_layering.py SRC_DIR
"""
import pathlib
import re
import sys

CHAIN = ["core", "metrics", "policy", "lifecycle", "store", "world", "execution",
         "scheduler", "server", "cli"]
ALLOWED = {part: set(CHAIN[:i]) for i, part in enumerate(CHAIN)}
ALLOWED["broker"] = {"core", "metrics"}
ALLOWED["sdk"] = {"core", "metrics", "broker"}
ALLOWED["report"] = {"core", "metrics"}
ALLOWED["cli"] |= {"broker", "sdk", "report"}
# The Python package's extension: the offline parts, never the server's.
ALLOWED["python"] = {"core", "metrics", "policy", "broker", "sdk"}
# The server answers requests; the serve command (cli) runs the scheduler
# beside it, so the server neither includes nor links it.
ALLOWED["server"].discard("scheduler")

INCLUDE = re.compile(r'^\s*#\s*include\s+"qmtl/([a-z_]+)/')
PART_DEPS = re.compile(r"qmtl_part\(\s*([a-z_]+)(.*?)\)", re.S)


def link_errors(root: pathlib.Path) -> list:
    """Parts whose CMake target links a part above it."""
    errors = []
    for cmake in sorted(root.rglob("CMakeLists.txt")):
        for m in PART_DEPS.finditer(cmake.read_text(encoding="utf-8")):
            part = m.group(1)
            if part not in ALLOWED:
                continue
            deps = m.group(2).split("DEPS", 1)[1] if "DEPS" in m.group(2) else ""
            for dep in re.findall(r"qmtl::([a-z_]+)", deps):
                dep = "broker" if dep == "broker_fix" else dep
                if dep != part and dep not in ALLOWED[part]:
                    errors.append(f"{cmake}: {part} may not link qmtl::{dep}")
    return errors


def main() -> int:
    root = pathlib.Path(sys.argv[1]) / "qmtl"
    errors = link_errors(root)
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".h", ".cc"):
            continue
        part = path.relative_to(root).parts[0]
        if part not in ALLOWED:
            errors.append(f"{path}: '{part}' is not a part of the layering; add it to "
                          "scripts/check_layering.py and docs/architecture.md")
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != part and m.group(1) not in ALLOWED[part]:
                errors.append(f"{path}:{n}: {part} may not include qmtl/{m.group(1)}/ "
                              f"(it may use: {', '.join(sorted(ALLOWED[part])) or 'nothing'})")
    for e in errors:
        print(e)
    print(f"layering: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
