"""recaptcha_tf: a Keras/TensorFlow research toolkit for CAPTCHA recognition.

Three task families share one package:

* ``tiles``: reCAPTCHA v2 image tiles in class folders (single- or multi-label).
* ``text``: 4-8 character text CAPTCHAs (CRNN+CTC or per-character heads).
* ``chars``: single glyphs in class folders (grayscale, small).

The Python API (:mod:`recaptcha_tf.api`)::

    run = recaptcha_tf.train(task="tiles", data="data/shapes")
    model = recaptcha_tf.load(run.path)
    model.predict(["tile.png"])

Submodules are imported lazily so that ``import recaptcha_tf`` stays cheap.
"""

from recaptcha_tf.utils.version import __version__ as __version__

_API = ("load", "read", "train", "Model", "Run")


def __getattr__(name: str):
    if name in _API:
        from recaptcha_tf import api

        return getattr(api, name)
    raise AttributeError(f"module 'recaptcha_tf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
