"""Praat TextGrid reader: long and short text formats, encodings, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioadapt.data.corpora.textgrid import Interval, Point, parse_textgrid, read_textgrid
from audioadapt.errors import DataError

LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 2.5 
tiers? <exists> 
size = 3 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "emotion" 
        xmin = 0 
        xmax = 2.5 
        intervals: size = 2 
        intervals [1]:
            xmin = 0 
            xmax = 1.25 
            text = "anger" 
        intervals [2]:
            xmin = 1.25 
            xmax = 2.5 
            text = "" 
    item [2]:
        class = "IntervalTier" 
        name = "sentence" 
        xmin = 0 
        xmax = 2.5 
        intervals: size = 1 
        intervals [1]:
            xmin = 0 
            xmax = 2.5 
            text = "ta ütles ""tere""
teisel real" 
    item [3]:
        class = "TextTier" 
        name = "marks" 
        xmin = 0 
        xmax = 2.5 
        points: size = 1 
        points [1]:
            number = 0.75 
            mark = "peak" 
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2.5
<exists>
3
"IntervalTier"
"emotion"
0
2.5
2
0
1.25
"anger"
1.25
2.5
""
"IntervalTier"
"sentence"
0
2.5
1
0
2.5
"ta ütles ""tere""
teisel real"
"TextTier"
"marks"
0
2.5
1
0.75
"peak"
'''

OLD_SHORT = (
    'File type = "ooTextFile short"\n"TextGrid"\n\n0\n1e0\n<exists>\n1\n'
    '"IntervalTier"\n"emotion"\n0\n1\n1\n0\n.1E1\n"joy" ! a comment\n'
)


def test_long_and_short_formats_agree() -> None:
    long_grid, short_grid = parse_textgrid(LONG), parse_textgrid(SHORT)
    assert long_grid == short_grid
    assert long_grid.tier_names == ("emotion", "sentence", "marks")
    emotion = long_grid.tier("emotion")
    assert emotion is not None and emotion.kind == "interval"
    assert emotion.items == (Interval(0.0, 1.25, "anger"), Interval(1.25, 2.5, ""))
    sentence = long_grid.tier("sentence")
    assert sentence is not None and sentence.items[0].text == 'ta ütles "tere"\nteisel real'
    marks = long_grid.tier("marks")
    assert marks is not None and marks.kind == "point" and marks.items == (Point(0.75, "peak"),)
    assert (long_grid.xmin, long_grid.xmax) == (0.0, 2.5)
    assert long_grid.tier("missing") is None


def test_old_short_header_comments_and_exponents() -> None:
    grid = parse_textgrid(OLD_SHORT)
    assert grid.xmax == 1.0 and grid.tiers[0].items == (Interval(0.0, 1.0, "joy"),)


def test_absent_tiers() -> None:
    text = 'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1\ntiers? <absent>\n'
    assert parse_textgrid(text).tiers == ()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8", "utf-8-sig", "latin-1"])
def test_file_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "a.TextGrid"
    data = LONG.encode(encoding)
    if encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    path.write_bytes(data)
    sentence = read_textgrid(path).tier("sentence")
    assert sentence is not None and sentence.items[0].text.startswith("ta ütles")


def test_truncated_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.TextGrid"
    lines = SHORT.splitlines(keepends=True)
    path.write_text("".join(lines[:12]), encoding="utf-8")
    with pytest.raises(DataError, match="file ends early") as info:
        read_textgrid(path)
    assert info.value.path == path and info.value.line == 12


def test_unterminated_string_reports_its_line() -> None:
    text = SHORT.replace('"anger"', '"anger')
    with pytest.raises(DataError, match="unterminated string") as info:
        parse_textgrid(text.split('"sentence"')[0].rsplit('"IntervalTier"', 1)[0])
    line = next(i for i, x in enumerate(SHORT.splitlines(), 1) if x == '"anger"')
    assert info.value.line == line


def test_type_errors() -> None:
    with pytest.raises(DataError, match="not a TextGrid"):
        parse_textgrid('File type = "ooTextFile"\nObject class = "Sound"\n')
    with pytest.raises(DataError, match="not a Praat text file"):
        parse_textgrid('"hello" "TextGrid"')
    with pytest.raises(DataError, match="unknown tier class 'FooTier'"):
        parse_textgrid(SHORT.replace('"TextTier"', '"FooTier"'))
    with pytest.raises(DataError, match=r"expected text \(a quoted string\)") as info:
        parse_textgrid(SHORT.replace('"anger"', "7"))
    assert info.value.line == SHORT.splitlines().index('"anger"') + 1


def test_binary_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "b.TextGrid"
    path.write_bytes(b"ooBinaryFile\x08TextGrid\x00\x00")
    with pytest.raises(DataError, match="binary"):
        read_textgrid(path)
    with pytest.raises(DataError, match="cannot read TextGrid"):
        read_textgrid(tmp_path / "none.TextGrid")
