"""Rewrites a wheel without some folders, optionally stripping symbols from some ELF files,
keeping its dist-info consistent (RECORD loses the dropped files' lines; stripped files get
their new sha256 and size). Used by make_bundle.sh to fit the device's 64 MiB carry limit.

    python3 repack_wheel.py IN.whl OUT.whl --drop ray/jars/ ... [--strip ray/_raylet.so ...]
"""

import argparse
import base64
import hashlib
import os
import subprocess
import tempfile
import zipfile


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--drop", nargs="*", default=[], help="path prefixes to leave out")
    parser.add_argument("--strip", nargs="*", default=[], help="ELF files to run `strip --strip-unneeded` on")
    args = parser.parse_args()

    zin = zipfile.ZipFile(args.src)
    names = [i.filename for i in zin.infolist()]
    # the wheel's own RECORD (ray also ships vendored packages with dist-info folders of their own)
    record = next(n for n in names if n.count("/") == 1 and n.endswith(".dist-info/RECORD"))
    kept = [i for i in zin.infolist() if not i.filename.startswith(tuple(args.drop))]
    missing = [s for s in args.strip if s not in names]
    if missing:
        raise SystemExit(f"repack_wheel.py: not in {args.src}: {missing}")
    new = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.strip:
            path = os.path.join(tmp, "f")
            with open(path, "wb") as f:
                f.write(zin.read(name))
            subprocess.run(["strip", "--strip-unneeded", path], check=True)
            with open(path, "rb") as f:
                new[name] = f.read()
    lines = []
    for line in zin.read(record).decode().splitlines():
        path = line.rsplit(",", 2)[0]
        if path.startswith(tuple(args.drop)):
            continue
        if path in new:
            line = f"{path},{record_hash(new[path])},{len(new[path])}"
        lines.append(line)
    new[record] = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(args.dst + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in kept:  # same order as the original: dist-info stays last
            data = new.get(info.filename)
            if data is None:
                data = zin.read(info.filename)
            out = zipfile.ZipInfo(info.filename, info.date_time)
            out.external_attr, out.compress_type = info.external_attr, zipfile.ZIP_DEFLATED
            zout.writestr(out, data, compresslevel=9)
    os.replace(args.dst + ".tmp", args.dst)
    before, after = os.path.getsize(args.src), os.path.getsize(args.dst)
    print(f"{os.path.basename(args.dst)}: {len(names) - len(kept)} files dropped, {len(args.strip)} stripped, "
          f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
