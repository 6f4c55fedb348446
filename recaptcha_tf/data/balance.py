"""Oversample the *training* subset of a split with Augmentor, or weight its classes instead.

The seed project balanced the whole data folder before splitting it, so
augmented copies of validation images ended up in training. Here the split
comes first and only ``split.train`` is balanced: each class's training images
are copied to ``OUT/<class>/orig_<name>`` and, for classes with fewer than
``per_class`` images, ``aug_<k>_<source stem>.png`` files are generated from
randomly chosen training images of the same class. Validation and test files
are never read, copied or augmented; the returned :class:`Split` (also written
to ``OUT/split.json``) points at them unchanged.

Balancing is seeded (same inputs and seed give byte-identical files) and
idempotent: ``OUT/balance.json`` stores a fingerprint of the inputs, and a
repeated call with the same inputs writes nothing.

The alternative to oversampling is :func:`class_weights`, for
``model.fit(class_weight=...)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import warnings
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.images import warn_skipped
from recaptcha_tf.data.splits import SUBSETS, Split, save_manifest

log = logging.getLogger("recaptcha_tf")

STATE_NAME = "balance.json"
_FORMAT_VERSION = 1

# Augmentor operations applied to each augmented image, in this order, each with
# its own probability. ``name`` is a class of ``Augmentor.Operations``; the other
# keys are its constructor arguments. All of them keep the image size.
# (Augmentor 0.2.12 only uses Pillow constants that Pillow 13 still has.)
DEFAULT_OPERATIONS: tuple[dict, ...] = (
    # Rotate by an integer angle in [-15, 15] degrees, crop the largest inner
    # rectangle and resize back (no black corners).
    {"name": "RotateRange", "probability": 0.7, "max_left_rotation": 15, "max_right_rotation": 15},
    # Perspective tilt of up to 20% of the larger side (left, right, forward, backward).
    {"name": "Skew", "probability": 0.3, "skew_type": "TILT", "magnitude": 0.2},
    # Horizontal mirror. Drop it (pass your own ``operations``) for data whose
    # class changes when mirrored, such as single characters (b/d, 2/S).
    {"name": "Flip", "probability": 0.5, "top_bottom_left_right": "LEFT_RIGHT"},
    # Brightness and contrast factors drawn uniformly from [0.7, 1.3].
    {"name": "RandomBrightness", "probability": 0.5, "min_factor": 0.7, "max_factor": 1.3},
    {"name": "RandomContrast", "probability": 0.5, "min_factor": 0.7, "max_factor": 1.3},
)

NO_FLIP_OPERATIONS = tuple(op for op in DEFAULT_OPERATIONS if op["name"] != "Flip")  # glyphs: b/d, 2/S


# ----------------------------------------------------------------------------
# Augmentation of one image
# ----------------------------------------------------------------------------


def build_operations(operations: Sequence = DEFAULT_OPERATIONS) -> list:
    """Instantiate ``Augmentor.Operations`` objects from specs like :data:`DEFAULT_OPERATIONS`.

    Args:
        operations: dicts ``{"name": <Augmentor.Operations class>, "probability": p, **kwargs}``;
            ready-made ``Augmentor.Operations.Operation`` objects are passed through.

    Returns:
        A list of ``Augmentor.Operations.Operation`` instances.
    """
    from Augmentor import Operations

    built = []
    for spec in operations:
        if isinstance(spec, Operations.Operation):
            built.append(spec)
            continue
        spec = dict(spec)
        name = spec.pop("name", None)
        cls = getattr(Operations, str(name), None)
        if not (isinstance(cls, type) and issubclass(cls, Operations.Operation)):
            raise ValueError(f"Unknown Augmentor operation {name!r} in {spec!r}.")
        probability = float(spec.get("probability", 1.0))
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"Probability of {name} must be in [0, 1], got {probability}.")
        try:
            built.append(cls(**spec))
        except TypeError as err:
            raise ValueError(f"Bad arguments for Augmentor operation {name}: {err}") from err
    return built


@contextlib.contextmanager
def _seeded_global_rngs(seed: int):
    """Seed Python's ``random`` and NumPy's global RNG (Augmentor draws from both); restore on exit."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _to_rgb(image):
    """PIL image in mode RGB. Alpha is dropped, as TensorFlow's decoder does with ``channels=3``."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB") if image.mode != "RGB" else image.copy()


def _apply_operation(operation, image):
    """Run one Augmentor operation on one image, keeping its size.

    Augmentor's ``RotateRange`` crop formula breaks on strongly elongated images
    (``ValueError`` from ``crop``); those get a plain same-size rotation
    (``RotateStandard``, black corners) over the same angle range instead.
    """
    from Augmentor import Operations

    with warnings.catch_warnings():
        # Augmentor's Skew builds an np.matrix, which warns on every call.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        try:
            out = operation.perform_operation([image])[0]
        except ValueError:
            if not isinstance(operation, Operations.RotateRange):
                raise
            fallback = Operations.RotateStandard(
                operation.probability, operation.max_left_rotation, operation.max_right_rotation
            )
            out = fallback.perform_operation([image])[0]
    if out.size != image.size:
        from PIL import Image

        out = out.resize(image.size, resample=Image.BICUBIC)
    return out


def _augment_with_seed(image, operations: Sequence, seed: int):
    """Apply ``operations`` (built) to an RGB image with all randomness drawn from ``seed``.

    Each operation runs with its probability; if none was drawn, one operation
    with a non-zero probability is picked so that no output is a plain copy.
    """
    with _seeded_global_rngs(seed):
        chosen = [op for op in operations if random.random() < op.probability]
        candidates = [op for op in operations if op.probability > 0]
        if not chosen and candidates:
            chosen = [candidates[random.randrange(len(candidates))]]
        for op in chosen:
            image = _apply_operation(op, image)
    return image


def augment_image(image, rng=None, operations: Sequence = DEFAULT_OPERATIONS):
    """Apply the augmentation operations once to a PIL image (e.g. to show samples in a notebook).

    Args:
        image: PIL image of size ``(W, H)``, any mode (converted to RGB, alpha dropped).
        rng: ``np.random.Generator``, an int seed, or ``None`` for fresh entropy.
            One integer is drawn from it; Python's and NumPy's global RNGs are
            seeded from that integer while Augmentor runs and restored afterwards.
        operations: specs like :data:`DEFAULT_OPERATIONS` or Augmentor operation objects.

    Returns:
        A new RGB PIL image of the same size ``(W, H)``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    seed = int(rng.integers(0, 2**32))
    return _augment_with_seed(_to_rgb(image), build_operations(operations), seed)


def _read_rgb(path: str):
    """Decode ``path`` to an RGB image as training and inference decode it
    (:func:`recaptcha_tf.data.images.load_image_array`: transparency on the background it implies, 16-bit images
    scaled, the first frame, within the pixel limit), or ``None`` if it cannot be decoded."""
    from PIL import Image

    from recaptcha_tf.data.images import CorruptImageError, load_image_array

    try:
        pixels = load_image_array(path, 3)
    except CorruptImageError:
        return None
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        return None
    return Image.fromarray(pixels, "RGB")


# ----------------------------------------------------------------------------
# Balancing a split
# ----------------------------------------------------------------------------


def _check_split(split: Split) -> None:
    """Reject multi-label splits and labels outside ``class_names``."""
    n = len(split.class_names)
    for name in SUBSETS:
        for path, label in split.subset(name):
            if isinstance(label, (list, tuple)):
                raise ValueError(
                    f"balance_split handles single-label splits only; {path!r} in {name} has the "
                    f"multi-label label {label!r}. Use class_weights or a custom sampler instead."
                )
            if not isinstance(label, (int, np.integer)) or not 0 <= int(label) < n:
                raise ValueError(f"Label {label!r} of {path!r} in {name} is not a class index below {n}.")


def _is_inside(path: str, folder: str) -> bool:
    """True if ``path`` (resolved) is ``folder`` or lies below it."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _file_signature(path: str) -> list:
    """``[absolute path, size, mtime_ns]``; size -1 for a missing file."""
    try:
        st = os.stat(path)
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [os.path.abspath(path), -1, 0]


def _fingerprint(split: Split, per_class: int, cap: int | None, seed: int, operations: Sequence) -> str:
    """Hash of everything the files in ``out_dir`` depend on (not val/test, which are not touched)."""
    import Augmentor
    import PIL

    payload = {
        "version": _FORMAT_VERSION,
        "class_names": list(split.class_names),
        "train": [_file_signature(p) + [int(lab)] for p, lab in split.train],
        "per_class": per_class,
        "cap": cap,
        "seed": seed,
        "operations": list(operations),
        "pillow": PIL.__version__,
        "augmentor": getattr(Augmentor, "__version__", ""),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_state(out_dir: str) -> dict | None:
    """Contents of ``out_dir/balance.json``; ``None`` if ``out_dir`` is new or empty.

    Raises:
        DatasetError: ``out_dir`` is a file, or a non-empty folder without
            ``balance.json`` (not written by :func:`balance_split`).
    """
    if not os.path.exists(out_dir):
        return None
    if not os.path.isdir(out_dir):
        raise DatasetError(f"Output folder {out_dir!r} exists and is not a folder.")
    path = os.path.join(out_dir, STATE_NAME)
    if not os.path.exists(path):
        if os.listdir(out_dir):
            raise DatasetError(
                f"Output folder {out_dir!r} is not empty and has no {STATE_NAME}, so it was not "
                "written by balance_split; refusing to write into it. Pass a new or empty folder "
                "(or delete this one)."
            )
        return None
    try:
        with open(path) as f:
            state = json.load(f)
        if not isinstance(state, dict) or not isinstance(state.get("files", []), list):
            raise ValueError("not a balance state")
        return state
    except ValueError as err:
        raise DatasetError(f"{path} is unreadable ({err}); delete {out_dir!r} and balance again.") from err


def _write_json(obj: dict, path: str) -> None:
    """Write ``obj`` as JSON atomically (temporary file then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _outputs_intact(out_dir: str, files: Sequence) -> bool:
    """True if every ``[relpath, label, size]`` recorded in ``balance.json`` is still there."""
    for rel, _, size in files:
        try:
            if os.path.getsize(os.path.join(out_dir, rel)) != size:
                return False
        except OSError:
            return False
    return True


def _remove_outputs(out_dir: str, files: Sequence) -> None:
    """Delete files a previous call wrote (listed in ``balance.json``), never anything outside ``out_dir``."""
    folders = set()
    for entry in files:
        path = os.path.join(out_dir, entry[0])
        if not _is_inside(path, out_dir) or os.path.realpath(path) == os.path.realpath(out_dir):
            continue
        if os.path.isfile(path) or os.path.islink(path):
            os.remove(path)
        folders.add(os.path.dirname(path))
    for folder in sorted(folders, reverse=True):
        if _is_inside(folder, out_dir) and os.path.realpath(folder) != os.path.realpath(out_dir):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only succeeds when empty


def _unique_name(name: str, used: set) -> str:
    """``name``, or ``<i>_<name>`` for the first free ``i``; records the result in ``used``."""
    candidate, i = name, 1
    while candidate.lower() in used:
        candidate = f"{i}_{name}"
        i += 1
    used.add(candidate.lower())
    return candidate


def _plan_class(
    sources: Sequence[str],
    per_class: int,
    cap: int | None,
    rng: np.random.Generator,
) -> list[tuple[str, str, int | None]]:
    """Files to write for one class: ``(file name, source path, augmentation seed or None)``.

    ``sources`` are the class's readable training images. ``None`` as seed means
    "copy the original bytes". Augmentation sources cycle through successive
    seeded permutations of ``sources`` so every image is used about equally.
    """
    sources = list(sources)
    if cap is not None and len(sources) > cap:
        keep = np.sort(rng.choice(len(sources), size=cap, replace=False))
        sources = [sources[i] for i in keep]
    used: set = set()
    plan = [(_unique_name("orig_" + os.path.basename(p), used), p, None) for p in sources]
    n_aug = max(0, per_class - len(sources))
    if n_aug:
        rounds = -(-n_aug // len(sources))
        order = np.concatenate([rng.permutation(len(sources)) for _ in range(rounds)])[:n_aug]
        for k, i in enumerate(order):
            stem = os.path.splitext(os.path.basename(sources[i]))[0]
            name = _unique_name(f"aug_{k:05d}_{stem}.png", used)
            plan.append((name, sources[i], int(rng.integers(0, 2**32))))
    return plan


def _result_split(split: Split, out_dir: str, files: Sequence, record: dict) -> Split:
    """The balanced split: train from ``out_dir``, val/test and everything else from ``split``."""
    extra = dict(split.extra)
    extra["balanced"] = record
    return Split(
        class_names=list(split.class_names),
        train=[(os.path.join(out_dir, rel), int(label)) for rel, label, _ in files],
        val=list(split.val),
        test=list(split.test),
        root=split.root,
        seed=split.seed,
        fractions=tuple(split.fractions),
        extra=extra,
    )


def _save_manifest_if_changed(split: Split, out_dir: str) -> None:
    """Write ``out_dir/split.json`` unless it already holds exactly ``split``."""
    from recaptcha_tf.data.splits import MANIFEST_NAME

    path = os.path.join(out_dir, MANIFEST_NAME)
    try:
        with open(path) as f:
            if json.load(f) == json.loads(json.dumps(split.to_dict())):
                return
    except (OSError, ValueError):
        pass
    save_manifest(split, path)


def balance_split(
    split: Split,
    out_dir: str = "balanced_images",
    per_class: int = 2000,
    cap: int | None = None,
    seed: int = 0,
    progress: bool = True,
    operations: Sequence[dict] = DEFAULT_OPERATIONS,
) -> Split:
    """Oversample each class of ``split.train`` to ``per_class`` images in ``out_dir``.

    For every class, the readable training images are copied byte for byte to
    ``out_dir/<class>/orig_<file name>``; a class with ``n < per_class`` of them
    also gets ``per_class - n`` files ``aug_<k>_<source stem>.png`` (RGB PNG,
    same size as their source), each made from a seeded random training image of
    that class by :data:`DEFAULT_OPERATIONS`. Classes with more than ``per_class``
    images are kept whole unless ``cap`` is given. ``split.val`` and
    ``split.test`` are never read or copied.

    The result is also written to ``out_dir/split.json``, so ``out_dir`` can be
    passed later as the data folder (its val/test are the original files).
    A second call with the same inputs (train files, sizes and mtimes,
    ``per_class``, ``cap``, ``seed``, ``operations``) writes nothing; changed
    inputs rebuild the files this function wrote before, and nothing else.

    Args:
        split: single-label split (see :func:`recaptcha_tf.data.splits.stratified_split`).
        out_dir: output folder; must be new, empty, or written by this function.
        per_class: oversample every class up to this many training images.
        cap: keep at most this many originals per class (a seeded random subset);
            ``None`` keeps all. Must be ``>= per_class``.
        seed: seed of every random choice; same seed and inputs give identical bytes.
        progress: show a tqdm progress bar.
        operations: Augmentor operation specs (see :data:`DEFAULT_OPERATIONS`).

    Returns:
        A new :class:`Split` with the same ``class_names``, ``val`` and ``test``,
        ``train`` listing the files in ``out_dir``, and
        ``extra["balanced"] = {"per_class", "cap", "seed", "source_counts", "counts", ...}``.

    Raises:
        ValueError: bad ``per_class``/``cap``, a multi-label split, a class with no
            training image, or split files inside ``out_dir``.
        DatasetError: a class with no readable training image, or a foreign ``out_dir``.
    """
    from tqdm.auto import tqdm

    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}.")
    per_class = int(per_class)
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < per_class:
            raise ValueError(
                f"cap must be None or an integer >= per_class ({per_class}), got {cap!r}: a class "
                "cannot be capped below the size other classes are oversampled to."
            )
        cap = int(cap)
    seed = int(seed)
    operations = [dict(op) for op in operations]
    try:
        json.dumps(operations)
    except TypeError as err:
        raise ValueError(f"operations must be JSON-serialisable specs (dicts): {err}") from err
    built_ops = build_operations(operations)

    _check_split(split)
    names = list(split.class_names)
    for name in names:
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise ValueError(f"Class name {name!r} cannot be used as a folder name.")
    by_class: list[list[str]] = [[] for _ in names]
    for path, label in split.train:
        by_class[int(label)].append(str(path))
    empty = [names[i] for i, files in enumerate(by_class) if not files]
    if empty:
        raise ValueError(f"Class(es) {empty} have no training images in the split; cannot balance them.")
    for subset in SUBSETS:
        inside = [p for p, _ in split.subset(subset) if _is_inside(p, out_dir)]
        if inside:
            raise ValueError(
                f"{len(inside)} {subset} file(s) of the split lie inside out_dir {out_dir!r} "
                f"(e.g. {inside[0]!r}); balance into a different folder."
            )

    out_dir = os.path.abspath(out_dir)
    state = _read_state(out_dir)
    fingerprint = _fingerprint(split, per_class, cap, seed, operations)
    if (
        state is not None
        and state.get("complete")
        and state.get("fingerprint") == fingerprint
        and _outputs_intact(out_dir, state["files"])
    ):
        result = _result_split(split, out_dir, state["files"], state["record"])
        _save_manifest_if_changed(result, out_dir)
        log.info("%s is up to date; nothing to balance.", out_dir)
        return result

    # Plan everything (and fail on bad input) before touching out_dir.
    plans, skipped, unreadable_classes = [], [], []
    for label, files in enumerate(by_class):
        readable = [p for p in files if _read_rgb(p) is not None]
        skipped.extend(sorted(set(files) - set(readable)))
        if not readable:
            unreadable_classes.append(names[label])
            continue
        rng = np.random.default_rng([seed, label])
        plans.append(_plan_class(readable, per_class, cap, rng))
    warn_skipped(skipped, what="unreadable training image(s) (corrupt or over the pixel limit)")
    if unreadable_classes:
        raise DatasetError(f"Class(es) {unreadable_classes} have no readable training images.")

    os.makedirs(out_dir, exist_ok=True)
    if state is not None:
        _remove_outputs(out_dir, state.get("files", []))
    planned = [
        [os.path.join(names[label], fname), label, -1] for label, plan in enumerate(plans) for fname, _, _ in plan
    ]
    # Recorded first, so an interrupted run is cleaned up by the next one.
    _write_json(
        {"version": _FORMAT_VERSION, "complete": False, "files": planned},
        os.path.join(out_dir, STATE_NAME),
    )

    files = []
    with tqdm(total=len(planned), desc="Balancing train split", unit="img", disable=not progress) as bar:
        for label, plan in enumerate(plans):
            folder = os.path.join(out_dir, names[label])
            os.makedirs(folder, exist_ok=True)
            cache: dict[str, object] = {}
            for fname, source, aug_seed in plan:
                dest = os.path.join(folder, fname)
                if aug_seed is None:
                    shutil.copyfile(source, dest)
                else:
                    if source not in cache:
                        cache[source] = _read_rgb(source)
                    _augment_with_seed(cache[source], built_ops, aug_seed).save(dest, format="PNG")
                files.append([os.path.join(names[label], fname), label, os.path.getsize(dest)])
                bar.update(1)

    counts = [0] * len(names)
    for _, label, _ in files:
        counts[label] += 1
    record = {
        "per_class": per_class,
        "cap": cap,
        "seed": seed,
        "source_counts": [len(f) for f in by_class],
        "counts": counts,
        "skipped": sorted(skipped),
        "operations": operations,
    }
    result = _result_split(split, out_dir, files, record)
    _save_manifest_if_changed(result, out_dir)
    _write_json(
        {
            "version": _FORMAT_VERSION,
            "complete": True,
            "fingerprint": fingerprint,
            "files": files,
            "record": record,
        },
        os.path.join(out_dir, STATE_NAME),
    )
    log.info("Balanced training split in %s: %s images per class.", out_dir, counts)
    return result


def class_weights(split: Split) -> dict[int, float]:
    """Balanced class weights ``n_samples / (n_classes * count_c)`` from the training counts.

    The alternative to :func:`balance_split`: pass the result as
    ``model.fit(..., class_weight=class_weights(split))``.

    Returns:
        ``{class index: weight}`` for every class in ``split.class_names``.

    Raises:
        ValueError: a multi-label split, or a class with no training image.
    """
    _check_split(split)
    n_classes = len(split.class_names)
    labels = np.asarray([int(lab) for _, lab in split.train], dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    missing = [split.class_names[i] for i in range(n_classes) if counts[i] == 0]
    if missing:
        raise ValueError(f"Class(es) {missing} have no training images; their weight is undefined.")
    try:
        from sklearn.utils.class_weight import compute_class_weight

        weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=labels)
    except ImportError:
        weights = len(labels) / (n_classes * counts)
    return {i: float(w) for i, w in enumerate(weights)}
