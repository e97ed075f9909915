"""`tinygen render` and `tinygen boards`: golden files, patterns, re-render, bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.boards import board_names, load_board, parse_board
from tinygen.errors import BoardError
from tinygen.model.tflite_file import read_tflite
from tinygen.render import ARENA_MARGIN_FRACTION, ARENA_MARGIN_MIN, ops_table, template_trees

TFLM = REPO / "tests" / "data" / "tflm"
GOLDEN = REPO / "tests" / "golden"
GESTURE = REPO / "examples" / "basicmotions"
BOARDS = ["esp32cam", "esp32dev", "nano33ble", "nano33ble_sense_rev2"]


def render(board: str, model: Path, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    proc = run_tinygen("render", "--board", board, str(model), "--out", str(out), "--json",
                       *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_every_board_profile_loads() -> None:
    assert set(BOARDS) <= set(board_names())
    for name in BOARDS:
        b = load_board(name)
        assert b.name == name and b.usb_ids and b.ram_budget > 0 and b.flash_budget > 0


def _template_sources(board: str) -> dict[str, Path]:
    """Rendered path -> template file, for the trees this board's projects use."""
    b = load_board(board)
    found: dict[str, Path] = {}
    for tree in template_trees(b.engine, b.template):
        root = REPO / "templates" / tree
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.name != "__init__.py":
                if f.suffix == ".jinja" and f.read_text().startswith("{% if sensor"):
                    continue  # whole-file sensor glue: rendered only in sensor mode
                found[f.relative_to(root).as_posix().removesuffix(".jinja")] = f
    return found


@pytest.mark.parametrize("board", BOARDS)
def test_golden_project(board: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """hello_world_int8 for every board: templated files compared with tests/golden/<board>/
    (the model array is checked byte for byte by the pattern test below), static files
    with their template."""
    model = tmp_path / "hello_world_int8.tflite"
    shutil.copy(TFLM / "hello_world_int8.tflite", model)
    out = tmp_path / "project"
    render(board, model, out, "--labels", "y")
    sources = _template_sources(board)
    rendered = {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*"))
                if p.is_file()}
    assert sorted(rendered) == sorted([*sources, "tinygen.json"])
    templated = {rel: text for rel, text in rendered.items()
                 if rel == "tinygen.json" or (sources[rel].suffix == ".jinja"
                                              and rel != "src/tinygen_model_data.cc")}
    for rel, text in rendered.items():
        if rel in sources and sources[rel].suffix != ".jinja":
            assert text == sources[rel].read_text(), f"{rel} is not a copy of its template"
    golden = GOLDEN / board
    if request.config.getoption("--update-golden"):
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in templated.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    expected = {p.relative_to(golden).as_posix(): p.read_text() for p in sorted(golden.rglob("*"))
                if p.is_file()}
    assert sorted(templated) == sorted(expected), "file list differs (rerun with --update-golden)"
    for rel, text in templated.items():
        assert text == expected[rel], f"{board}/{rel} differs from tests/golden (--update-golden)"


MODELS = {
    "gesture": GESTURE / "model.h5",
    "micro_speech": TFLM / "micro_speech_quantized.tflite",
    "hello_world": TFLM / "hello_world_int8.tflite",
}


@pytest.mark.parametrize("board", ["nano33ble", "esp32cam"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_rendered_project_matches_the_model(name: str, board: str, tmp_path: Path) -> None:
    model = MODELS[name]
    out = tmp_path / "p"
    extra = ["--labels", "silence,unknown,yes,no"] if name == "micro_speech" else []
    if name == "hello_world":
        extra = ["--labels", "y"]
    result = render(board, model, out, *extra)
    m = result["manifest"]
    tfl = Path(m["model_file"])
    data = (out / "src" / "tinygen_model_data.cc").read_text()
    if model.suffix == ".tflite":
        raw, parsed = read_tflite(model)
    else:  # converted first, next to the project folder (not into the current directory)
        raw, parsed = read_tflite(out.parent / tfl.name)
    # the model bytes in the C array are the model's bytes
    values = [int(v, 16) for v in data.split("{", 1)[1].split("}", 1)[0].replace(",", " ").split()]
    assert bytes(values) == raw and "alignas(16) const unsigned char" in data
    # the resolver registers exactly the model's ops, sorted, N = their count
    ops_cc = (out / "src" / "tinygen_ops.cc").read_text()
    ops_h = (out / "src" / "tinygen_ops.h").read_text()
    from tinygen.model.tflm_library import libraries

    lib = libraries()[m["tflm_library_choice"]["name"]]  # the exact one for the model
    assert m["tflm_library_choice"]["exact"]
    table = ops_table(lib["ops_table"])["builtin"]
    expected = [table[n] for n in parsed.op_names()]
    registered = [ln.split("resolver.")[1].split("(")[0] for ln in ops_cc.splitlines()
                  if "resolver.Add" in ln]
    assert registered == expected
    assert f"MicroMutableOpResolver<{len(expected)}>" in ops_h
    # arena: >= measured and within the documented margin
    cfg = (out / "src" / "tinygen_config.h").read_text()
    arena = int(cfg.split("#define TINYGEN_ARENA_BYTES ")[1].split()[0])
    measured = m["arena"]["measured"]
    allowed = measured + max(ARENA_MARGIN_MIN, math.ceil(measured * ARENA_MARGIN_FRACTION)) + 16
    assert measured <= arena <= allowed and arena % 16 == 0
    # labels and quantization match the model
    inp, outp = parsed.input_tensors()[0], parsed.output_tensors()[0]
    assert f'#define TINYGEN_INPUT_ZERO_POINT {inp.quantization.zero_point[0]}\n' in cfg
    assert f'#define TINYGEN_OUTPUT_ZERO_POINT {outp.quantization.zero_point[0]}\n' in cfg
    scale = float(cfg.split("#define TINYGEN_INPUT_SCALE ")[1].split("f")[0])
    assert scale == pytest.approx(inp.quantization.scale[0], rel=1e-8)
    labels = cfg.split('#define TINYGEN_LABELS "')[1].split('"')[0].split(",")
    assert labels == m["labels"] and len(labels) == math.prod(outp.shape)
    assert f'#define TINYGEN_INPUT_BYTES {math.prod(inp.shape)}\n' in cfg
    heap = "1" if board.startswith("esp32") else "0"
    assert f"#define TINYGEN_ARENA_IN_HEAP {heap}\n" in cfg
    ini = (out / "platformio.ini").read_text()
    assert lib["lib_deps"] in ini and f"board = {board}" in ini


def test_rerender_rewrites_nothing(tmp_path: Path) -> None:
    out = tmp_path / "p"
    model = TFLM / "micro_speech_quantized.tflite"
    first = render("nano33ble", model, out, "--labels", "a,b,c,d")
    assert first["unchanged"] == []
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    (out / ".pio").mkdir()  # PlatformIO's build folder survives re-renders
    (out / ".pio" / "keep").write_text("build output")
    second = render("nano33ble", model, out, "--labels", "a,b,c,d")
    assert second["written"] == [] and sorted(second["unchanged"]) == sorted(first["written"])
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()
                      and ".pio" not in p.parts}
    # a change of labels rewrites only the files that hold them
    third = render("nano33ble", model, out, "--labels", "a,b,c,e")
    assert sorted(third["written"]) == ["src/tinygen_config.h", "tinygen.json"]
    assert (out / ".pio" / "keep").exists()


def test_failed_render_leaves_old_project_intact(tmp_path: Path) -> None:
    out = tmp_path / "p"
    render("esp32cam", TFLM / "micro_speech_quantized.tflite", out, "--labels", "a,b,c,d")
    (out / "src" / "tinygen_app.cpp").write_text("// a broken edit by the user\n")
    (out / "tinygen.json").write_text("{ not json")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = run_tinygen("render", "--board", "esp32cam", str(TFLM / "audio_preprocessor_int8.tflite"),
                       "--out", str(out))
    assert_user_error(proc, "int8")  # int16 input: refused before anything is written
    proc = run_tinygen("render", "--board", "esp32cam", str(TFLM / "micro_speech_quantized.tflite"),
                       "--labels", "one label", "--out", str(out))
    assert_user_error(proc)
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temp folders left


def test_render_refuses_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("not a tinygen project")
    proc = run_tinygen("render", "--board", "nano33ble", str(TFLM / "hello_world_int8.tflite"),
                       "--out", str(out))
    assert_user_error(proc, "not a tinygen project")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_unknown_board_lists_the_boards(tmp_path: Path) -> None:
    proc = run_tinygen("render", "--board", "uno", str(TFLM / "hello_world_int8.tflite"),
                       "--out", str(tmp_path / "p"))
    line = assert_user_error(proc, "unknown board 'uno'")
    for name in BOARDS:
        assert name in line
    assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real int8 model too big for small boards: 240,000 inputs -> Dense(4) (961 KB: over
    the nano33ble's flash with Chirale's measured TFLM figure too)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    d = tmp_path_factory.mktemp("big")
    m = keras.Sequential([keras.Input((240_000,)), keras.layers.Dense(4, activation="softmax")])
    m.save(d / "big.keras")
    np.savez(d / "big.calib.npz", x=np.random.default_rng(0).normal(size=(8, 240_000)))
    out = d / "big_int8.tflite"
    proc = run_tinygen("convert", str(d / "big.keras"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_model_too_big_names_the_numbers(big_model: Path, tmp_path: Path) -> None:
    size = big_model.stat().st_size
    proc = run_tinygen("render", "--board", "nano33ble", str(big_model), "--out", str(tmp_path / "a"))
    line = assert_user_error(proc, "does not fit nano33ble", "flash", f"{size:,} B", "RAM: arena")
    assert "196,608 B" in line  # room for the arena on the nRF52840
    proc = run_tinygen("render", "--board", "esp32dev", str(big_model), "--out", str(tmp_path / "b"))
    assert_user_error(proc, "does not fit esp32dev", "largest internal heap block")
    # The ESP32-CAM has PSRAM: the arena goes there.
    result = render("esp32cam", big_model, tmp_path / "c")
    assert result["manifest"]["arena"]["psram"] is True
    cfg = (tmp_path / "c" / "src" / "tinygen_config.h").read_text()
    assert "#define TINYGEN_ARENA_USE_PSRAM 1" in cfg
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_op_missing_from_the_board_library_is_named(tmp_path: Path) -> None:
    """BATCH_MATMUL: upstream TFLM and tflm_esp32 have it, Chirale_TensorFlowLite 2.0.0 does
    not."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    inp = keras.Input((4, 8))
    dot = keras.layers.Dot(axes=2)([inp, inp])
    m = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(dot)))
    m.save(tmp_path / "bmm.keras")
    np.savez(tmp_path / "bmm.calib.npz", x=np.random.default_rng(0).random((16, 4, 8)))
    proc = run_tinygen("render", "--board", "nano33ble", str(tmp_path / "bmm.keras"),
                       "--out", str(tmp_path / "p"), "--tflm-library", "chirale-2.0.0")
    assert_user_error(proc, "BATCH_MATMUL", "Chirale_TensorFLowLite@2.0.0")
    assert not (tmp_path / "p").exists()
    # left to choose, render takes a candidate that has the op, and says it is not measured
    proc = run_tinygen("render", "--board", "nano33ble", str(tmp_path / "bmm.keras"),
                       "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert "BATCH_MATMUL (not measured)" in proc.stderr and "--engine aot" in proc.stderr
    m = json.loads((tmp_path / "p" / "tinygen.json").read_text())
    assert m["tflm_library_choice"]["name"] == "tflm_esp32-2.0.0"


def test_op_tflm_lacks_is_named(tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="gelu")])
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.ones((1, 8), np.float32)] for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (tmp_path / "gelu.tflite").write_bytes(conv.convert())
    proc = run_tinygen("render", "--board", "esp32dev", str(tmp_path / "gelu.tflite"),
                       "--out", str(tmp_path / "p"))
    assert_user_error(proc, "GELU")


def test_broken_board_profile_names_the_field(tmp_path: Path) -> None:
    profile = json.loads(Path(REPO / "boards" / "nano33ble.json").read_text())
    profile["name"] = "mybad"
    profile["ram_bytes"] = "256k"
    (tmp_path / "mybad.json").write_text(json.dumps(profile))
    proc = run_tinygen("render", "--board", "mybad", str(TFLM / "hello_world_int8.tflite"),
                       "--out", str(tmp_path / "p"), env={"TINYGEN_BOARDS_DIR": str(tmp_path)})
    assert_user_error(proc, "ram_bytes", "must be int")
    del profile["platformio"]["board"]
    profile["ram_bytes"] = 1
    with pytest.raises(BoardError, match=r"missing field 'board'"):
        parse_board(profile, "x.json")


def test_boards_command() -> None:
    proc = run_tinygen("boards", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)
    cam = next(r for r in rows if r["name"] == "esp32cam")
    assert cam["psram_bytes"] == 4 * 1024 * 1024 and "1a86:7523" in cam["usb_ids"]
    one = run_tinygen("boards", "nano33ble")
    assert "nRF52840" in one.stdout and "2341:805a" in one.stdout
