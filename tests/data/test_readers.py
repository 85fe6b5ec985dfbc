"""Streaming readers: formats, column mapping, and the source line of every row."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopsense.data.readers import detect_format, parse_mapping, progress_total, read_batches
from shopsense.exceptions import InputFileError, SchemaError


def _all(path, **kw):
    names, batches = read_batches(path, **kw)
    batches = list(batches)
    rows = [r for b in batches for r in b.table.to_pylist()]
    lines = [int(x) for b in batches for x in b.lines]
    errors = [e for b in batches for e in b.errors]
    return names, batches, rows, lines, errors


def test_detect_format() -> None:
    assert detect_format("a.csv") == "csv"
    assert detect_format("a.TSV") == "tsv"
    assert detect_format("a.events.parquet") == "parquet"
    assert detect_format("a.ndjson") == "jsonl"
    assert detect_format("a.jsonl.gz") == "jsonl"
    assert detect_format("a.txt", "csv") == "csv"
    with pytest.raises(ValueError, match="--format"):
        detect_format("a.txt")
    with pytest.raises(ValueError, match="valid: csv"):
        detect_format("a.csv", "xml")


def test_parse_mapping() -> None:
    assert parse_mapping(["product_id=item_id", " uid = user_id "]) == {"product_id": "item_id", "uid": "user_id"}
    with pytest.raises(ValueError, match="SOURCE=TARGET"):
        parse_mapping(["product_id"])


def test_csv_lines_count_blank_quoted_and_malformed_rows(tmp_path) -> None:
    p = tmp_path / "t.csv"
    # line: 1 header, 2 row, 3 blank, 4 malformed, 5-6 one quoted row over two lines, 7 row, 8 malformed, 9 row
    p.write_text('a,b,c\n1,2,3\n\n4,5\n"x\ny",7,8\n9,10,11\n4,5\n12,13,14\n', encoding="utf-8")
    for batch_rows in (2, 1000):
        names, _, rows, lines, errors = _all(p, batch_rows=batch_rows)
        assert names == ["a", "b", "c"]
        data = [(r["a"], r["b"]) for r in rows]
        assert data == [(b"1", b"2"), (b"", b""), (b"x\ny", b"7"), (b"9", b"10"), (b"12", b"13")]
        assert lines == [2, 3, 5, 7, 9]
        assert [(e.line, e.raw) for e in errors] == [(4, "4,5"), (8, "4,5")]
        assert "expected 3 fields, found 2" in errors[0].reason


def test_tsv_and_gzip_and_mapping(tmp_path) -> None:
    p = tmp_path / "t.tsv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("product_id\tname\nA\tApple, red\nB\tBanana\n")
    names, _, rows, lines, _ = _all(p, mapping={"product_id": "item_id", "name": "title"})
    assert names == ["item_id", "title"]
    assert rows == [{"item_id": b"A", "title": b"Apple, red"}, {"item_id": b"B", "title": b"Banana"}]
    assert lines == [2, 3]


def test_mapping_errors(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="'zz' not in the file; its columns are: a, b"):
        read_batches(p, mapping={"zz": "item_id"})
    with pytest.raises(SchemaError, match="more than once"):
        read_batches(p, mapping={"a": "b"})


def test_parquet_streams_in_batches_with_row_numbers(tmp_path) -> None:
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": np.arange(10)}), p, row_group_size=4)
    _, batches, rows, lines, _ = _all(p, batch_rows=3)
    assert len(batches) >= 4 and all(b.num_rows <= 3 for b in batches)
    assert [r["x"] for r in rows] == list(range(10))
    assert lines == list(range(1, 11))
    assert progress_total(p) == 10


def test_csv_bigger_than_one_batch_streams(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("x\n" + "".join(f"{i}\n" for i in range(25)), encoding="utf-8")
    _, batches, rows, lines, _ = _all(p, batch_rows=4)
    assert len(batches) == 7
    assert [int(r["x"]) for r in rows] == list(range(25))
    assert lines == list(range(2, 27))


def test_jsonl_lines_and_bad_records(tmp_path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        b'{"a": 1, "b": "x"}\n\n{"a": 2, "b": ["p", "q"]}\nnot json\n[1, 2]\n{"a": "\xff"}\n{"a": 3, "c": {"k": 1}}\n'
    )
    names, _, rows, lines, errors = _all(p, batch_rows=2)
    assert names == ["a", "b"]  # the keys of the first batch
    assert lines == [1, 3, 7]
    assert rows[1]["b"] == '["p", "q"]' and json.loads(rows[2]["c"]) == {"k": 1}
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [
        (4, "not valid JSON"),
        (5, "a line must be a JSON object"),
        (6, "not valid UTF-8 (byte 8 of the line)"),
    ]


def test_empty_and_missing_files(tmp_path) -> None:
    (tmp_path / "e.csv").write_text("", encoding="utf-8")
    with pytest.raises(SchemaError, match="empty"):
        read_batches(tmp_path / "e.csv")
    with pytest.raises(InputFileError, match="nope.csv: no such file"):
        read_batches(tmp_path / "nope.csv")


def test_a_header_without_a_line_end_is_a_file_without_rows(tmp_path) -> None:
    (tmp_path / "h.csv").write_bytes(b"item_id,title")  # pyarrow could not skip such a header
    names, _, rows, _, errors = _all(tmp_path / "h.csv")
    assert names == ["item_id", "title"] and rows == [] and not errors


def test_crlf_and_bom(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(b'\xef\xbb\xbfa,b\r\n1,"x\r\ny"\r\n2,z\r\n')
    names, _, rows, lines, errors = _all(p)
    assert names == ["a", "b"] and not errors
    assert rows == [{"a": b"1", "b": b"x\r\ny"}, {"a": b"2", "b": b"z"}]
    assert lines == [2, 4]
