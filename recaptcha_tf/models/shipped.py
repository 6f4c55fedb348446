"""Shipped models: trained models that come inside the package, by name (keras-hub presets in spirit).

``shipped_models()`` lists them, ``resolve_shipped(name)`` gives a model's checked ``model.keras`` and
``write_manifest_entry(...)`` adds one; ``recaptcha-tf evaluate/predict/export/serve --model NAME`` and
``recaptcha_tf.load(NAME)`` take their names. The code lives in :mod:`recaptcha_tf.utils.shipped`, which imports no
TensorFlow (importing this package imports Keras), so that the command line checks a name before TensorFlow starts;
this module is its home among the models.
"""

from recaptcha_tf.utils.shipped import *  # noqa: F403  (the public names, listed once in its __all__)
from recaptcha_tf.utils.shipped import __all__  # noqa: F401
