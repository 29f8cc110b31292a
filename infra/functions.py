#!/usr/bin/env python3
"""The Lambda functions template.yaml declares, and checks of their built artifacts.

    functions.py                          prints LogicalId=binary, one per function
    functions.py --check-artifacts ARCH   checks .aws-sam/build/<LogicalId>/bootstrap of each:
                                          present, executable, built for ARCH; prints binary
                                          and zip sizes; fails over the size budget
"""
import io
import os
import re
import sys
import zipfile

# Budgets from the ops issue: every zip under 6 MB, the order webhook (the hot path) under 4 MB.
ZIP_BUDGET = 6_000_000
ZIP_BUDGET_BY_BINARY = {"order-webhook": 4_000_000}
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


def functions(template="template.yaml"):
    text = open(template, encoding="utf-8").read()
    found = []
    pattern = re.compile(
        r"^  (\w+):\n    Type: AWS::Serverless::Function\n    Metadata:\n(?:      .*\n)*?        Binary: (\S+)",
        re.M,
    )
    for m in pattern.finditer(text):
        found.append((m.group(1), m.group(2)))
    declared = len(re.findall(r"^    Type: AWS::Serverless::Function$", text, re.M))
    if declared != len(found):
        sys.exit(f"template.yaml declares {declared} functions but {len(found)} name a Binary")
    return found


def check(arch, only):
    failures = []
    rows = []
    for logical, binary in functions():
        if only and binary not in only:
            continue
        path = os.path.join(".aws-sam", "build", logical, "bootstrap")
        if not os.path.isfile(path):
            failures.append(f"{logical}: no artifact at {path}")
            continue
        if not os.access(path, os.X_OK):
            failures.append(f"{logical}: {path} is not executable")
        data = open(path, "rb").read()
        machine = int.from_bytes(data[18:20], "little") if data[:4] == b"\x7fELF" else None
        if machine != ELF_MACHINE[arch]:
            failures.append(f"{logical}: {path} is not an {arch} ELF executable")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
        zipped = len(buf.getvalue())
        budget = ZIP_BUDGET_BY_BINARY.get(binary, ZIP_BUDGET)
        if zipped >= budget:
            failures.append(f"{logical}: zip {zipped} bytes, budget {budget}")
        rows.append((binary, logical, len(data), zipped, budget))
    print(f"{'binary':<20} {'function':<28} {'binary MB':>9} {'zip MB':>7} {'budget':>7}")
    for binary, logical, size, zipped, budget in rows:
        print(f"{binary:<20} {logical:<28} {size / 1e6:>9.2f} {zipped / 1e6:>7.2f} {budget / 1e6:>7.1f}")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        for logical, binary in functions():
            print(f"{logical}={binary}")
    elif args[0] == "--check-artifacts":
        arch = args[1]
        only = args[3].split() if len(args) > 3 and args[2] == "--only" else []
        sys.exit(check(arch, only))
    else:
        sys.exit(__doc__)
