#!/usr/bin/env python3
"""What a build's deleted files cost the next build's checkout, and what keeping their inodes
would save.

On ext4 without a journal, the inode allocator will not reuse an inode freed in the last
minute: on each creation it walks the block group's free inodes from the first, past every such
inode, until it finds an older one. A build that follows another whose files were just deleted
pays that walk for every file it creates, unless older free inodes happen to lie below the
freshly freed ones (which is why the cost comes and goes with the disk's history).

Builds run back to back in one folder, two ways, taking turns:

- delete: each build checks out 2,000 files (40 folders) and writes 1,000 outputs of 200 KB;
  its folder is then deleted, as pushbuild does today;
- reuse:  the same, but the build's files are truncated and moved into a spare folder rather
  than deleted, and the next checkout renames spare files into place and writes them: no inode
  is freed or allocated for the checkout (a design sketch: links, modes and extended attributes
  are not handled here).

Prints the medians of the checkout, the outputs and the clean-up per way, the folder's file
system and whether it has a journal.

Run: python3 bench/recent_deletions.py [FOLDER] [ROUNDS]   (default: target/tmp, 8)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

BODY = b"// a source file\n" * 60
OUTPUT = b"a" * 200_000


def journal(folder):
    """Whether the file system of `folder` keeps a journal (ext4's journal thread), if known."""
    source = subprocess.run(["findmnt", "-no", "SOURCE", "-T", folder],
                            capture_output=True, text=True).stdout.strip()
    task = f"/sys/fs/ext4/{os.path.basename(source)}/journal_task"
    if not os.path.exists(task):
        return "unknown"
    return "no journal" if open(task).read().strip() == "<none>" else "journal"


def checkout(src, spare):
    started = time.monotonic()
    for d in range(40):
        os.makedirs(os.path.join(src, f"pkg{d:02}"), exist_ok=True)
    for i in range(2000):
        path = os.path.join(src, f"pkg{i % 40:02}", f"f{i:04}.rs")
        if spare:
            os.rename(spare.pop(), path)
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, BODY)
        os.close(fd)
    return time.monotonic() - started


def outputs(src):
    started = time.monotonic()
    for i in range(1000):
        folder = os.path.join(src, "dist", f"d{i % 40:02}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"a{i:04}"), "wb") as f:
            f.write(OUTPUT)
    return time.monotonic() - started


def park(build, spare_folder, spare):
    """The build's files truncated and moved to the spare folder; its folders removed."""
    started = time.monotonic()
    for folder, _, files in os.walk(build):
        for name in files:
            path = os.path.join(folder, name)
            os.truncate(path, 0)
            kept = os.path.join(spare_folder, str(len(spare)))
            while os.path.exists(kept):
                kept += "x"
            os.rename(path, kept)
            spare.append(kept)
    shutil.rmtree(build)
    return time.monotonic() - started


def delete(build):
    started = time.monotonic()
    shutil.rmtree(build)
    return time.monotonic() - started


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target", "tmp")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.makedirs(root, exist_ok=True)
    fs = subprocess.run(["stat", "-f", "-c", "%T", root], capture_output=True,
                        text=True).stdout.strip()
    home = tempfile.mkdtemp(dir=root, prefix="recent-deletions-")
    spare_folder = os.path.join(home, "spare")
    os.makedirs(spare_folder)
    spare = []
    times = {way: ([], [], []) for way in ("delete", "reuse")}
    try:
        for _ in range(rounds):
            for way in ("delete", "reuse"):
                build = tempfile.mkdtemp(dir=home)
                src = os.path.join(build, "src")
                took = times[way]
                took[0].append(checkout(src, spare if way == "reuse" else None))
                took[1].append(outputs(src))
                if way == "reuse":
                    took[2].append(park(build, spare_folder, spare))
                else:
                    took[2].append(delete(build))
    finally:
        shutil.rmtree(home)
    print(f"{rounds} builds each way, taking turns, under {os.path.abspath(root)} "
          f"({fs}, {journal(root)}), medians:")
    for way, took in times.items():
        checkout_ms, outputs_ms, clean_ms = (sorted(t)[len(t) // 2] * 1000 for t in took)
        print(f"  {way:<7} checkout of 2,000 files {checkout_ms:6.0f} ms, "
              f"1,000 outputs {outputs_ms:6.0f} ms, clean-up {clean_ms:6.0f} ms")


if __name__ == "__main__":
    main()
