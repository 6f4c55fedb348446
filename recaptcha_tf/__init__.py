"""recaptcha_tf: a Keras/TensorFlow research toolkit for CAPTCHA recognition.

Three task families share one package:

* ``tiles``: reCAPTCHA v2 image tiles in class folders (single- or multi-label).
* ``text``: 4-8 character text CAPTCHAs (CRNN+CTC or per-character heads).
* ``chars``: single glyphs in class folders (grayscale, small).

Submodules are imported lazily so that ``import recaptcha_tf`` stays cheap.
"""

__version__ = "0.1.0"
