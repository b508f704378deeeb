"""Checks that the installed distributions of one environment never share a
file: no path on disk is listed in the RECORD of two distributions, and
every file still has the hash its RECORD gives (one distribution did not
overwrite another's file, as nvidia-cudnn-cu12 does to nvidia-cudnn-cu13
when TensorFlow's and torch's CUDA stacks share a venv).

    python ci/check-records.py SITE_PACKAGES

Exits 1 naming the files and their owners, 0 when clean.
"""

import base64
import hashlib
import os
import sys
from importlib import metadata


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def main(site):
    owners = {}
    changed = []
    dists = list(metadata.distributions(path=[site]))
    for dist in dists:
        name = dist.metadata["Name"]
        for f in dist.files or []:
            path = os.path.realpath(os.path.join(site, str(f)))
            if "__pycache__" in path:
                continue
            owners.setdefault(path, []).append(name)
            if f.hash is None or f.hash.mode != "sha256" or not os.path.isfile(path):
                continue
            if digest(path) != f.hash.value:
                changed.append((path, name))
    shared = {p: o for p, o in owners.items() if len(set(o)) > 1}
    for p, o in sorted(shared.items()):
        print(f"shared: {p} is listed by {', '.join(sorted(set(o)))}", file=sys.stderr)
    for p, name in changed:
        print(f"overwritten: {p} no longer matches {name}'s RECORD", file=sys.stderr)
    print(
        f"check-records: {len(dists)} distributions, {len(owners)} files, "
        f"{len(shared)} shared, {len(changed)} overwritten",
        file=sys.stderr,
    )
    return 1 if shared or changed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: check-records.py SITE_PACKAGES", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
