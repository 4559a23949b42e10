"""Models as artifacts: saved with a small manifest that says how to load them back.

A model logged as ``name`` is the folder ``name/`` of the run's artifacts: the model file
and ``runstream_model.json``, the manifest (flavor, library and version, Python version,
the file, how to load it). Flavors:

- ``pytorch``: a ``torch.nn.Module`` (saved whole with ``torch.save``) or a state dict
  (a mapping of tensors), when torch is importable; loaded with ``torch.load``;
- ``sklearn``: a scikit-learn estimator, pickled; the scikit-learn version is recorded;
- ``pickle``: any other picklable object.

Loading unpickles: only load models from runs you trust.
"""

from __future__ import annotations

import importlib
import json
import pickle
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from runstream.tracking.exceptions import ModelError

MANIFEST = "runstream_model.json"
FORMAT_VERSION = 1
_PICKLE_FILE = "model.pkl"
_TORCH_FILE = "model.pt"


def save_model(model: Any, folder: Path) -> dict[str, Any]:
    """Save ``model`` and its manifest into ``folder`` (created); return the manifest.

    Raises:
        ModelError: the model cannot be serialised (nothing usable is left in ``folder``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    flavor = _flavor(model)
    try:
        if flavor.startswith("pytorch"):
            importlib.import_module("torch").save(model, folder / _TORCH_FILE)
            file, library = _TORCH_FILE, "torch"
        else:
            with (folder / _PICKLE_FILE).open("wb") as stream:
                pickle.dump(model, stream, protocol=pickle.HIGHEST_PROTOCOL)
            file, library = _PICKLE_FILE, "scikit-learn" if flavor == "sklearn" else "python"
    except Exception as error:  # pickle raises PicklingError, TypeError, AttributeError, ...
        for leftover in folder.iterdir():
            leftover.unlink()
        raise ModelError(
            f"cannot save a {type(model).__module__}.{type(model).__qualname__} model as "
            f"{flavor}: {error!r}"
        ) from error
    manifest = {
        "format_version": FORMAT_VERSION,
        "flavor": flavor,
        "library": library,
        "library_version": _version(library),
        "python_version": platform.python_version(),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "file": file,
        "loader": "torch.load(file, weights_only=False)" if library == "torch" else "pickle.load",
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), "utf-8")
    return manifest


def load_model(folder: Path) -> Any:
    """Load the model saved in ``folder`` by :func:`save_model`.

    Raises:
        ModelError: no manifest, an unknown flavor or format version, the library missing,
            or the model file unreadable.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"no readable model manifest {MANIFEST} in {folder}: {error}") from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"model format_version {manifest.get('format_version')!r} is unknown")
    file = folder / str(manifest.get("file"))
    library = manifest.get("library")
    try:
        if library == "torch":
            try:
                torch = importlib.import_module("torch")
            except ImportError as error:
                raise ModelError("this model needs PyTorch: pip install torch") from error
            return torch.load(file, weights_only=False)
        if library == "scikit-learn" and "sklearn" not in sys.modules:
            try:  # unpickling needs it: say so clearly
                importlib.import_module("sklearn")
            except ImportError as error:
                raise ModelError(
                    "this model needs scikit-learn: pip install scikit-learn"
                ) from error
        with file.open("rb") as stream:
            return pickle.load(stream)
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(
            f"cannot load the {manifest.get('flavor')} model {file}: {error!r}"
        ) from error


def _flavor(model: Any) -> str:
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(model, torch.nn.Module):
            return "pytorch"
        if (
            isinstance(model, Mapping)
            and model
            and all(isinstance(v, torch.Tensor) for v in model.values())
        ):
            return "pytorch_state_dict"
    if type(model).__module__.split(".", 1)[0] == "sklearn":
        return "sklearn"
    return "pickle"


def _version(library: str) -> str:
    if library == "python":
        return platform.python_version()
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "unknown"
