"""``lstmviz export`` end to end: every format from a real saved Keras model, read back."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from lstmviz.cli import main as lstmviz_main
from lstmviz.engine.trace import QUANTITIES

SVG = "{http://www.w3.org/2000/svg}"


def run(*args) -> int:
    return lstmviz_main(["export", *[str(a) for a in args]])


# --- figures ---------------------------------------------------------------------------------
def test_png_size_and_content(digits, tmp_path):
    p, xp, _ = digits
    out = tmp_path / "grid.png"
    assert run(p, "--input", xp, "--step", 3, "--dpi", 100, "--size", "7x4", "--out", out) == 0
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (700, 400)
        a = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert a.std() > 20  # heatmaps, not a blank page
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 100


def test_png_styles_differ(digits, tmp_path):
    p, xp, _ = digits
    from PIL import Image

    sizes = {}
    for style in ("paper", "slide"):
        out = tmp_path / f"{style}.png"
        assert run(p, "--input", xp, "--style", style, "--out", out) == 0
        with Image.open(out) as im:
            sizes[style] = im.size
    assert sizes["paper"] == (2100, 1170)  # 7 x 3.9 in at 300 dpi
    assert sizes["slide"] == (1920, 1080)  # 12.8 x 7.2 in at 150 dpi: a 1080p slide


def test_svg_has_real_text(digits, tmp_path):
    p, _, _ = digits
    out = tmp_path / "grid.svg"
    assert run(p, "--text", "4 7 3 9 1", "--step", 2, "--out", out) == 0
    root = ET.parse(out).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    joined = " ".join(texts)
    for title in (
        "forget gate f",
        "input gate i",
        "output gate o",
        "candidate g",
        "cell state c",
        "hidden state h",
    ):
        assert title in joined
    assert "digit_sum" in joined
    assert "t = 2" in joined
    assert "lstm_digits" in joined
    assert {"4", "7", "3", "9", "1"} <= set(texts)  # the tokens along the time axis
    assert "unit" in texts
    assert len(list(root.iter(f"{SVG}image"))) == 12  # six heatmaps, six colour bars


def test_pdf_header_pages_and_fonts(digits, tmp_path):
    p, xp, _ = digits
    out = tmp_path / "grid.pdf"
    assert run(p, "--input", xp, "--style", "slide", "--out", out) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-1.")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 1
    assert b"/FontFile2" in data  # embedded TrueType: real, selectable text
    assert b"/Subtype /Image" in data


def test_one_quantity_some_units(stacked, tmp_path):
    p, xp, _ = stacked
    out = tmp_path / "one.svg"
    assert (
        run(
            p,
            "--input",
            xp,
            "--layer",
            _second(stacked),
            "--batch-index",
            1,
            "--quantities",
            "cell",
            "--units",
            "0,3",
            "--out",
            out,
        )
        == 0
    )
    root = ET.parse(out).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "cell state c" in texts
    assert "forget gate f" not in texts
    assert len(list(root.iter(f"{SVG}image"))) == 2  # heatmap and colour bar
    assert "batch item 1" in " ".join(texts)


def _second(stacked) -> str:
    return stacked[2].layers[1].name


# --- animations --------------------------------------------------------------------------------
def test_gif_one_frame_per_timestep(digits, tmp_path):
    p, xp, tr = digits
    out = tmp_path / "steps.gif"
    assert run(p, "--input", xp, "--dpi", 60, "--out", out) == 0
    import imageio.v3 as iio

    frames = iio.imread(out, index=None)
    assert frames.shape[0] == tr.timesteps == 9
    assert not np.array_equal(frames[0], frames[-1])  # the cursor moved


def decode_mp4(path, w: int = 64, h: int = 36) -> tuple[np.ndarray, str]:
    """Decode every frame (scaled to w x h RGB) with ffmpeg; returns (frames, stream info)."""
    import subprocess

    import imageio_ffmpeg

    r = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-i",
            str(path),
            "-vf",
            f"scale={w}:{h}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    frames = np.frombuffer(r.stdout, np.uint8).reshape(-1, h, w, 3)
    info = next(ln for ln in r.stderr.decode(errors="replace").splitlines() if "Video:" in ln)
    return frames, info


def test_mp4_decoded_frame_count(stacked, tmp_path):
    p, xp, tr = stacked
    out = tmp_path / "steps.mp4"
    assert run(p, "--input", xp, "--style", "slide", "--dpi", 41, "--out", out) == 0
    frames, info = decode_mp4(out)
    assert frames.shape[0] == tr.timesteps == 9
    assert "h264" in info
    assert "yuv420p" in info
    w, h = (int(v) for v in re.search(r"(\d{2,5})x(\d{2,5})", info).groups())
    assert w % 2 == 0
    assert h % 2 == 0
    assert not np.array_equal(frames[0], frames[-1])


# --- data ------------------------------------------------------------------------------------
def test_npz_equals_trace(stacked, tmp_path):
    p, xp, tr = stacked
    out = tmp_path / "trace.npz"
    assert run(p, "--input", xp, "--out", out) == 0
    with np.load(out, allow_pickle=False) as z:
        for lt in tr.layers:
            for q in QUANTITIES:
                a = z[f"{lt.name}/{q}"]
                assert a.shape == (2, 9, lt.units)
                np.testing.assert_array_equal(a, lt.get(q))
        np.testing.assert_array_equal(z["output"], tr.output)
        np.testing.assert_array_equal(z["input"], tr.inputs)
        meta = json.loads(str(z["meta"]))
    assert meta["model"]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_npz_selection(stacked, tmp_path):
    p, xp, tr = stacked
    name = _second(stacked)
    out = tmp_path / "sel.npz"
    assert (
        run(
            p,
            "--input",
            xp,
            "--layer",
            name,
            "--batch-index",
            1,
            "--units",
            "1,4",
            "--quantities",
            "f,h",
            "--out",
            out,
        )
        == 0
    )
    lt = tr.layer(name)
    with np.load(out, allow_pickle=False) as z:
        assert sorted(k for k in z.files if "/" in k) == [f"{name}/forget_gate", f"{name}/hidden"]
        np.testing.assert_array_equal(z[f"{name}/hidden"], lt.hidden[[1]][:, :, [1, 4]])


def test_csv_rows_and_values(stacked, tmp_path):
    p, xp, tr = stacked
    out = tmp_path / "trace.csv"
    assert run(p, "--input", xp, "--out", out) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = sum(lt.batch_size * lt.timesteps * lt.units * len(QUANTITIES) for lt in tr.layers)
    assert len(rows) == expected == 2 * 9 * (4 + 5) * 6
    assert set(rows[0]) == {"layer", "batch", "t", "unit", "quantity", "value"}
    for r in rows[:: len(rows) // 97]:
        lt = tr.layer(r["layer"])
        want = lt.get(r["quantity"])[int(r["batch"]), int(r["t"]), int(r["unit"])]
        assert np.float32(float(r["value"])) == want  # 9 digits: float32 exact


def test_csv_row_count_single_layer(digits, tmp_path):
    p, xp, _tr = digits
    out = tmp_path / "trace.csv"
    assert run(p, "--input", xp, "--quantities", "i,o", "--out", out) == 0
    n = len(out.read_text(encoding="utf-8").splitlines()) - 1
    assert n == 1 * 2 * 9 * 10 * 2


def test_json_metadata_and_values(digits, tmp_path):
    p, xp, tr = digits
    out = tmp_path / "meta.json"
    assert run(p, "--input", xp, "--out", out) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format_version"] == 1
    assert doc["model"]["file"] == str(p)
    assert doc["model"]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert doc["input"]["source"] == "file"
    assert doc["input"]["path"] == str(xp)
    assert doc["input"]["shape"] == [2, 9, 10]
    assert doc["engine"] == "numpy"
    assert {"lstmviz", "numpy", "python"} <= set(doc["versions"])
    assert doc["layers"][0]["name"] == tr.layers[0].name
    assert "values" not in doc

    out2 = tmp_path / "values.json"
    assert run(p, "--input", xp, "--values", "--out", out2) == 0
    doc = json.loads(out2.read_text(encoding="utf-8"))
    lt = tr.layers[0]
    for q in QUANTITIES:
        np.testing.assert_array_equal(np.asarray(doc["values"][lt.name][q], np.float32), lt.get(q))
    np.testing.assert_allclose(doc["output"], tr.output, rtol=1e-6)


# --- safety ----------------------------------------------------------------------------------
def test_no_overwrite_without_force(digits, tmp_path, capsys):
    p, xp, _ = digits
    out = tmp_path / "a.npz"
    out.write_bytes(b"keep me")
    assert run(p, "--input", xp, "--out", out) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert run(p, "--input", xp, "--out", out, "--force") == 0
    assert out.read_bytes()[:2] == b"PK"


def test_unsupported_extension_and_bad_path(digits, tmp_path, capsys):
    p, xp, _ = digits
    assert run(p, "--input", xp, "--out", tmp_path / "a.bmp") == 2
    err = capsys.readouterr().err
    assert "unsupported" in err
    assert ".png, .svg, .pdf, .gif, .mp4, .npz, .csv, .json" in err
    assert run(p, "--input", xp, "--out", tmp_path / "missing" / "a.png") == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "nope"], "no LSTM layer named 'nope'"),
        (["--units", "0,99"], "unit 99 is out of range"),
        (["--batch-index", "5"], "batch size 2"),
        (["--step", "9"], "--step 9 is out of range"),
        (["--quantities", "forget,bogus"], "unknown quantity 'bogus'"),
    ],
)
def test_bad_options_are_clear(digits, tmp_path, capsys, args, message):
    p, xp, _ = digits
    assert run(p, "--input", xp, *args, "--out", tmp_path / "a.png") == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing, not even a temporary file


def test_missing_model_file(tmp_path, capsys):
    assert run(tmp_path / "none.keras", "--out", tmp_path / "a.png") == 2
    assert "no such file" in capsys.readouterr().err
