"""Output checks made before any work: extension, folder, existing file; parsing options."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lstmviz.errors import LstmvizError
from lstmviz.export.formats import FORMATS, check_output, format_for
from lstmviz.export.selection import check_step, parse_quantities, parse_units


@pytest.mark.parametrize("ext", list(FORMATS))
def test_every_supported_extension(tmp_path, ext):
    p, fmt = check_output(tmp_path / f"out.{ext.upper()}")
    assert fmt == ext
    assert p.name == f"out.{ext.upper()}"


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.tiff"])
def test_unsupported_extension_lists_formats(tmp_path, name):
    with pytest.raises(LstmvizError) as e:
        check_output(tmp_path / name)
    for ext in FORMATS:
        assert f".{ext}" in str(e.value)


def test_missing_folder(tmp_path):
    with pytest.raises(LstmvizError, match="does not exist"):
        check_output(tmp_path / "nope" / "a.png")


def test_directory_as_output(tmp_path):
    d = tmp_path / "dir.png"
    d.mkdir()
    with pytest.raises(LstmvizError, match="is a directory"):
        check_output(d)


def test_existing_file_needs_force(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("old")
    with pytest.raises(LstmvizError, match="--force"):
        check_output(p)
    assert check_output(p, force=True)[1] == "csv"
    assert p.read_text() == "old"


def test_format_for_is_case_insensitive():
    assert format_for("A.PDF") == "pdf"


def test_parse_quantities():
    assert parse_quantities(None) == (
        "forget_gate",
        "input_gate",
        "output_gate",
        "candidate",
        "cell",
        "hidden",
    )
    assert parse_quantities("forget_gate, h,c") == ("forget_gate", "hidden", "cell")
    with pytest.raises(LstmvizError, match="forget_gate"):
        parse_quantities("forget,bogus")
    with pytest.raises(LstmvizError, match="empty"):
        parse_quantities(" , ")


def test_parse_units():
    assert parse_units("0,3,7") == (0, 3, 7)
    assert parse_units("0-3,7,3") == (0, 1, 2, 3, 7)
    assert parse_units(None) is None
    with pytest.raises(LstmvizError, match="unit index"):
        parse_units("a,b")
    with pytest.raises(LstmvizError, match="unit index"):
        parse_units("5-2")


def test_check_step():
    assert check_step(-1, 9) == 8
    assert check_step(None, 9) is None
    with pytest.raises(LstmvizError, match=r"0\.\.8"):
        check_step(9, 9)


def test_export_package_imports_no_qt_no_tensorflow_no_matplotlib():
    code = (
        "import sys, lstmviz.export, lstmviz.export.cli; "
        "bad = [m for m in ('PySide6', 'tensorflow', 'keras', 'matplotlib', 'pyqtgraph') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_written_files_get_normal_permissions(tmp_path):
    """atomic_open's temporary file comes from mkstemp (0o600); the result must not."""
    import os

    from lstmviz.io.atomic import atomic_write_text

    p = tmp_path / "a.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(p, "{}")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644
    p.chmod(0o640)
    atomic_write_text(p, "[]")  # replacing keeps the file's permissions
    assert p.stat().st_mode & 0o777 == 0o640


def test_cli_exports_a_bundled_example_by_name(tmp_path, capsys):
    import json

    from lstmviz.cli import main
    from lstmviz.examples import get_example

    try:
        ex = get_example("digit_sum")
    except LstmvizError:
        pytest.skip("the digit_sum example is not bundled")
    out = tmp_path / "meta.json"
    assert main(["export", "digit_sum", "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["model"]["file"] == str(ex.path)
    assert doc["input"]["source"] == "example"
    assert doc["input"]["tokens"][0] == ex.info.example.split()
    assert main(["export", "no_such_example", "--out", str(tmp_path / "b.json")]) == 2
    assert "no bundled example named 'no_such_example'" in capsys.readouterr().err
