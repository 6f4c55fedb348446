"""The demo's example inputs: held-out images of the run, and committed sample thumbnails (``samples/``)."""

from __future__ import annotations

import os
import shutil
import tempfile


def held_out_examples(model_path: str, count: int = 6) -> list[str]:
    """Up to ``count`` images of the run's held-out split (``split.json``), spread over it, copied to a temp folder.

    ``model_path`` is the run folder, its ``.keras`` file, or an exported
    artifact (its sidecar names the source model). Copies live in the system
    temp folder, which Gradio serves; the originals may be anywhere.
    """
    from recaptcha_tf.export import read_sidecar, run_images

    source = model_path
    if os.path.isfile(model_path) and not model_path.endswith(".keras"):
        try:
            source = read_sidecar(model_path).get("source_model", model_path)
        except (OSError, ValueError):
            return []
    try:
        files = run_images(source)
    except (OSError, ValueError):
        return []
    if not files:
        return []
    picked = [files[i * len(files) // min(count, len(files))] for i in range(min(count, len(files)))]
    folder = tempfile.mkdtemp(prefix="recaptcha_tf_examples_")
    out = []
    for k, path in enumerate(picked):
        name = f"{k + 1}_{os.path.basename(os.path.dirname(path))}_{os.path.basename(path)}"
        out.append(shutil.copy(path, os.path.join(folder, name)))
    return out


def default_samples_folder() -> str | None:
    """The checkout's ``samples/`` folder (next to the ``recaptcha_tf`` package), or ``None`` where there is none
    (an installed package has no samples)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.pardir, "samples")
    folder = os.path.normpath(folder)
    return folder if os.path.isdir(folder) else None


def _images_in(folder: str) -> list[str]:
    from recaptcha_tf.data.images import is_image_file

    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if is_image_file(n) and os.path.isfile(os.path.join(folder, n))]


def _class_key(name) -> str:
    """Class names as sample folders spell them: ``Traffic Light`` -> ``traffic_light``."""
    return str(name).strip().lower().replace(" ", "_")


def _subfolders(folder: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))
    except OSError:
        return []


def _class_set(folder: str, class_names) -> str | None:
    """The subfolder of ``folder`` made of class folders (``tiles/``, ``digits/`` ...) whose classes overlap the
    model's most (:func:`_class_key`), ``tiles/`` where none does; ``None`` where there is none."""
    own = {_class_key(n) for n in class_names}
    sets = [os.path.join(folder, n) for n in _subfolders(folder) if n != "text"]
    sets = [s for s in sets if _subfolders(s)]
    if not sets:
        return None
    return max(sets, key=lambda s: (len(own & {_class_key(c) for c in _subfolders(s)}), os.path.basename(s) == "tiles"))


def sample_examples(folder: str | None, text: bool, class_names=(), count: int = 8) -> list[tuple[str, str]]:
    """Up to ``count`` committed sample images for the demo's thumbnails, as ``(path, caption)``.

    ``folder`` holds ``text/*.png`` (text CAPTCHAs named by their label, the caption) and sets of class folders,
    ``tiles/<class>/*.png`` and the like (``digits/<class>/``; the class folder is the caption). A text model gets
    the first; a classifier the set that shares most of its ``class_names`` (``tiles/`` where none does), taken in
    turn from each class, the model's own classes first. The images are copied to a folder of
    their own that Gradio serves as is (:func:`gradio.set_static_paths`): only these copies are exposed, and no
    request's cleanup can delete them. An absent folder, or one without such images, gives ``[]``.
    """
    if not folder or count <= 0 or not os.path.isdir(folder):
        return []
    if text:
        from recaptcha_tf.data.folders import DatasetError
        from recaptcha_tf.data.text.files import label_from_filename

        picked = []
        for path in _images_in(os.path.join(folder, "text"))[:count]:
            try:
                caption = label_from_filename(path)
            except DatasetError:
                caption = os.path.splitext(os.path.basename(path))[0]
            picked.append((path, caption))
    else:
        tiles = _class_set(folder, class_names)
        classes = _subfolders(tiles) if tiles else []
        own = {_class_key(n) for n in class_names}
        order = sorted(classes, key=lambda c: _class_key(c) not in own)  # the model's own classes first
        queues = [_images_in(os.path.join(tiles, c)) for c in order]
        picked = []
        for depth in range(max(map(len, queues), default=0)):  # one of each class, then a second of each ...
            picked += [(files[depth], c) for c, files in zip(order, queues) if depth < len(files)]
        picked = picked[:count]
    if not picked:
        return []
    import gradio as gr

    copies = tempfile.mkdtemp(prefix="recaptcha_tf_samples_")
    out = []
    for k, (path, caption) in enumerate(picked):
        out.append((shutil.copy(path, os.path.join(copies, f"{k + 1}_{os.path.basename(path)}")), caption))
    gr.set_static_paths([copies])
    return out


def _sample_gallery(samples: list[tuple[str, str]]):
    """Thumbnails of ``samples`` (:func:`sample_examples`), or ``None`` for none; :func:`_on_sample` wires them."""
    import gradio as gr

    if not samples:
        return None
    return gr.Gallery(
        value=samples,
        label="sample images (click one)",
        columns=8,
        fit_columns=False,  # thumbnails, also when there are few
        height="auto",
        allow_preview=False,
        buttons=[],
        interactive=False,
        elem_id="sample-images",
    )


def _on_sample(gallery, samples: list[tuple[str, str]], upload, outputs, fn) -> None:
    """A click on a thumbnail puts that sample in ``upload``, then runs ``fn`` on it into ``outputs``."""
    import gradio as gr

    if gallery is None:
        return
    paths = [path for path, _ in samples]

    def pick(evt):
        return paths[evt.index]

    pick.__annotations__["evt"] = gr.SelectData  # Gradio passes the click by this type (a string under __future__)
    gallery.select(pick, None, [upload], api_visibility="private").then(fn, [upload], outputs, api_visibility="private")
