"""Write a `path,label,speaker` manifest for the EMO-DB copy in ../shared/data/emodb.

That copy keeps EMO-DB's file names but stores FLAC files under audio/ with its own manifest
(`path,emotion7,emotion4,speaker,...`), so the `emodb` loader (published wav/ layout) does not read it;
the `csv` loader reads the manifest written here. Rows without one of the four shared emotions
(emotion4 empty: boredom, disgust, fear) are left out.

    python recipes/emodb_urdu/emodb_manifest.py ../shared/data/emodb /tmp/emodb4.csv
"""

import csv
import sys
from pathlib import Path


def main(root: str, out: str) -> None:
    root_path = Path(root).resolve()
    with open(root_path / "manifest.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["emotion4"]]
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "label", "speaker"])
        for r in rows:
            writer.writerow([str(root_path / r["path"]), r["emotion4"], r["speaker"]])
    print(f"wrote {out}: {len(rows)} utterances")


if __name__ == "__main__":
    main(*sys.argv[1:3])
