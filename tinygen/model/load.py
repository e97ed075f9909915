"""Identify and load the user's model, without ever running code from it.

Formats: legacy HDF5 ``.h5``, Keras 3 ``.keras`` (zip), a TensorFlow SavedModel folder,
or ``.tflite``.  Keras configs are read and checked *before* Keras sees the file:
``Lambda`` layers and classes Keras does not ship (custom objects) are refused, then the
model is loaded with ``safe_mode=True`` and ``compile=False``.  SavedModel graphs are
checked for ops that touch files or run Python.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError, UnsafeModelError

KERAS_KINDS = ("h5", "keras", "savedmodel")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
# Graph ops that read or write files or call back into Python: a model has no business
# running them while being converted or evaluated.
UNSAFE_GRAPH_OPS = {
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "ShardedFilename",
    "DeleteFile", "ImmutableConst", "PrintV2",
}
# Graph ops that SavedModels always carry for restoring their own variables.
CHECKPOINT_OPS = {"SaveV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "RestoreV2"}


@dataclass(frozen=True)
class ModelFile:
    path: Path
    kind: str  # "h5" | "keras" | "savedmodel" | "tflite"
    sha256: str


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def identify(path: Path) -> ModelFile:
    """Which kind of model file this is; a missing or unknown file is an InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder", hint="check the model path")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return ModelFile(path, "savedmodel", sha256_of(path))
        raise InputFileError(
            f"{path} is a folder without saved_model.pb",
            hint="pass a .h5, .keras or .tflite file, or a TensorFlow SavedModel folder",
        )
    suffix = path.suffix.lower()
    kinds = {".h5": "h5", ".hdf5": "h5", ".keras": "keras", ".tflite": "tflite"}
    if suffix not in kinds:
        raise InputFileError(
            f"{path.name}: unknown model format '{suffix or '(no suffix)'}'",
            hint="tinygen reads .h5, .keras, .tflite files and SavedModel folders",
        )
    return ModelFile(path, kinds[suffix], sha256_of(path))


# --- reading Keras configs without Keras running anything --------------------------------

def read_keras_config(mf: ModelFile) -> dict[str, Any]:
    """The model's config as JSON, read straight from the file: the architecture, and the
    training configuration (``compile_config``, or an .h5's ``training_config``) if saved."""
    training: Any = None
    if mf.kind == "h5":
        with mf.path.open("rb") as fh:
            head = fh.read(8)
        if head != HDF5_SIGNATURE:
            raise InputFileError(
                f"{mf.path.name} is not an HDF5 file",
                hint="the file is damaged or not a Keras .h5 model; re-save it with model.save()",
            )
        import h5py

        try:
            with h5py.File(mf.path, "r") as f:
                raw = f.attrs.get("model_config")
                training = f.attrs.get("training_config")
        except OSError as exc:
            raise InputFileError(f"{mf.path.name}: cannot read HDF5: {exc}",
                                 hint="the file is damaged or truncated") from None
        if raw is None:
            raise InputFileError(
                f"{mf.path.name} holds weights only, no model architecture",
                hint="save the whole model with model.save('model.h5') or model.save('model.keras')",
            )
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
    elif mf.kind == "keras":
        if not zipfile.is_zipfile(mf.path):
            raise InputFileError(f"{mf.path.name} is not a .keras archive (not a zip file)",
                                 hint="re-save the model with model.save('model.keras')")
        try:
            with zipfile.ZipFile(mf.path) as z:
                text = z.read("config.json").decode()
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise InputFileError(f"{mf.path.name}: no readable config.json ({exc})",
                                 hint="re-save the model with model.save('model.keras')") from None
    else:
        raise AssertionError(mf.kind)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{mf.path.name}: model config is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputFileError(f"{mf.path.name}: model config is not an object")
    if training is not None:  # .h5: a separate attribute; kept apart, never loaded
        try:
            text = training.decode() if isinstance(training, bytes) else str(training)
            config["training_config"] = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            config["training_config"] = None
    return config


def walk_config_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every object with a class_name in a Keras config, depth first."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from walk_config_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_config_nodes(value)


def _known_keras_class(name: str) -> bool:
    import keras

    namespaces = [keras.layers, keras.models, keras.initializers, keras.regularizers,
                  keras.constraints, keras.dtype_policies, keras.activations]
    if name in {"Functional", "Sequential", "Model", "InputLayer", "DTypePolicy",
                "FloatDTypePolicy", "__tuple__", "__keras_tensor__", "__numpy__"}:
        return True
    return any(hasattr(ns, name) for ns in namespaces)


# The part of a saved Keras config that describes training, not the model: the optimizer,
# loss and metrics that `model.save()` writes after compile()/fit(). tinygen loads with
# compile=False, so none of it is ever deserialized.
TRAINING_KEYS = ("compile_config", "training_config")


def check_keras_config(config: dict[str, Any], name: str) -> list[str]:
    """Refuse architectures that would run code: Lambda layers and custom objects.

    The training configuration is not loaded; custom objects in it are only named in the
    returned warnings.
    """
    architecture = {k: v for k, v in config.items() if k not in TRAINING_KEYS}
    _check_architecture(architecture, name)
    return _training_config_warnings([config.get(k) for k in TRAINING_KEYS], name)


def _training_config_warnings(parts: list[Any], name: str) -> list[str]:
    import keras

    custom: list[str] = []
    for part in parts:
        if not part:
            continue
        for node in walk_config_nodes(part):
            cls = str(node.get("class_name"))
            module = node.get("module")
            registered = node.get("registered_name")
            keras_module = module is None or module == "keras" or str(module).startswith("keras.")
            if isinstance(registered, str) and ">" in registered or not keras_module:
                # a function is {"class_name": "function", "config": "package>name"}
                label = node.get("config") if cls == "function" else registered or cls
                custom.append(str(label))
            elif cls not in ("function", "__tuple__", "__numpy__") and not any(
                    hasattr(ns, cls) for ns in (keras.optimizers, keras.optimizers.schedules,
                                                keras.losses, keras.metrics)):
                custom.append(cls)
        custom.extend(_custom_names_in_strings(part))
    if not custom:
        return []
    names = ", ".join(f"'{c}'" for c in sorted(set(custom)))
    return [(f"{name}: its training configuration names custom objects ({names}); tinygen "
            f"does not load optimizers, losses or metrics (compile=False), so conversion is "
            f"not affected")]


def _custom_names_in_strings(part: Any) -> list[str]:
    """Losses and metrics given by name (an .h5's training_config: "pkg>my_loss")."""
    import keras

    def builtin(name: str) -> bool:
        for getter in (keras.losses.get, keras.metrics.get):
            try:
                getter(name)
                return True
            except (ValueError, TypeError, KeyError):
                continue
        return False

    found: list[str] = []

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k if k in ("loss", "metrics", "weighted_metrics") else key)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key is not None and not builtin(node):
            found.append(node)

    walk(part, None)
    return found


def _check_architecture(config: dict[str, Any], name: str) -> None:
    for node in walk_config_nodes(config):
        cls = str(node.get("class_name"))
        layer = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
        where = f" (layer '{layer}')" if layer else ""
        if cls in CODE_LAYERS:
            raise UnsafeModelError(
                f"{name} contains a {cls} layer{where}, which runs arbitrary Python code",
                hint="replace the Lambda with built-in Keras layers and re-save the model",
            )
        module = node.get("module")
        registered = node.get("registered_name")
        if cls == "function":
            fn = str(node.get("config"))
            import keras

            if module in ("keras.activations", "keras.src.activations") or \
                    hasattr(keras.activations, fn):
                continue
            raise UnsafeModelError(
                f"{name} refers to a custom function '{fn}'{where}",
                hint="use a built-in Keras activation/function; custom code is not loaded",
            )
        if isinstance(registered, str) and ">" in registered:
            raise UnsafeModelError(
                f"{name} uses the custom object '{registered}'{where}",
                hint="tinygen loads only built-in Keras classes; rebuild the model without it",
            )
        if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            raise UnsafeModelError(
                f"{name} uses '{cls}' from module '{module}'{where}",
                hint="tinygen loads only built-in Keras classes; rebuild the model without it",
            )
        if not _known_keras_class(cls):
            raise UnsafeModelError(
                f"{name} uses '{cls}'{where}, which is not a built-in Keras class",
                hint="custom layers/objects are not loaded; rebuild the model with built-in layers",
            )


def check_savedmodel(path: Path) -> None:
    """Refuse SavedModel graphs with file or Python ops (besides its own checkpoint ops)."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((path / "saved_model.pb").read_bytes())
    except Exception as exc:  # protobuf DecodeError  # noqa: BLE001
        raise InputFileError(f"{path.name}/saved_model.pb is not a SavedModel ({exc})",
                             hint="re-export the model with model.export(folder)") from None
    ops: set[str] = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    bad = sorted((ops & UNSAFE_GRAPH_OPS) - CHECKPOINT_OPS)
    if bad:
        raise UnsafeModelError(
            f"{path.name} runs graph ops that touch files or Python: {', '.join(bad)}",
            hint="export the inference graph only (model.export(folder))",
        )


def load_keras_model(mf: ModelFile) -> tuple[Any, list[str]]:
    """A safely loaded Keras model (.h5/.keras), and warnings about what was not loaded."""
    config = read_keras_config(mf)
    warnings = check_keras_config(config, mf.path.name)
    import keras

    try:
        return keras.models.load_model(mf.path, compile=False, safe_mode=True), warnings
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(
            f"Keras cannot load {mf.path.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            hint="re-save the model with the Keras version you train with (model.save())",
        ) from None


def load_savedmodel(mf: ModelFile) -> Any:
    check_savedmodel(mf.path)
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(mf.path))
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(
            f"TensorFlow cannot load the SavedModel {mf.path.name}: {str(exc).splitlines()[0]}",
            hint="re-export the model with model.export(folder)",
        ) from None
