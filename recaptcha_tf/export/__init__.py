"""Export a trained model to SavedModel, TFLite or ONNX, and check that the export agrees with Keras.

    recaptcha-tf export --model models/tiles-cnn --format tflite [--quantize dynamic] [--out PATH]

What is exported
    The *inference* form of the saved model: the same raw-image input
    ``(B, H, W, C)`` float32 pixels 0-255 of any size (resizing inside), the
    same weights, computing in float32 with dropout and BatchNorm in inference
    mode. Models trained in mixed precision (``mixed_bfloat16`` /
    ``mixed_float16``) are exported in float32; the parity report gives the
    difference to the mixed-precision Keras model as ``keras_mixed_vs_float32``.

    * ``savedmodel``: a ``tf.saved_model`` directory for TF Serving; signature
      ``serving_default(image)`` with ``image`` float32 pixels of shape
      ``(None, None, None, C)``, and ``serving_bytes(image_bytes)`` taking encoded
      image files (string ``(None,)``), decoded and resized as in training.
    * ``tflite``: a ``.tflite`` flat buffer. Input ``(None, None, None, C)`` when
      the converter can do it; recurrent (CTC) models need static shapes in
      TFLite, so they get a batch of 1 ``(1, None, None, C)``; the runner then
      feeds one image at a time. If neither converts, the input is fixed at the
      model's training size and the runner resizes first with the model's own
      Keras resizing layer.
    * ``onnx``: via ``tf2onnx.convert.from_function`` (opset 17); input
      ``(None, None, None, C)``.
    * ``--quantize dynamic``: dynamic-range quantization (int8 weights, float
      activations): ``tf.lite.Optimize.DEFAULT`` for TFLite,
      ``onnxruntime.quantization.quantize_dynamic`` for ONNX. Not for SavedModel.

    A sidecar ``<artifact>.json`` holds the label names, kind, threshold, task,
    image size, channels, resize mode and input shape, so a deployed artifact is
    decoded without Keras (:func:`predict_artifact`).

Parity (:func:`check_parity`)
    Both the float32 Keras inference model and the export run on the same real
    images, resized by the package pipeline (:func:`recaptcha_tf.data.pipeline.make_dataset`)
    to the model's size, plus a few images at their original size through the
    export's own resizing. Outputs compared are probabilities (softmax of the
    logits for CTC models). A float32 export passes when the largest absolute
    difference is at most :data:`FLOAT_TOLERANCE` (1e-4) *and* every decision
    agrees (top-1 class, multi-label set, decoded text). A dynamically quantized
    export passes when the decisions agree on at least :data:`QUANTIZED_MIN_AGREEMENT`
    (0.9) of the images; its largest absolute difference is reported, not enforced.

Modules: :mod:`~recaptcha_tf.export.convert` (the inference model, the three
formats, sidecars), :mod:`~recaptcha_tf.inference.runtimes` (runners that need no
Keras) and :mod:`~recaptcha_tf.export.parity` (the agreement check). The
``export`` command's printing lives in :mod:`recaptcha_tf.cli`.
"""

from recaptcha_tf.export.convert import (
    FLOAT_TOLERANCE,
    ONNX_OPSET,
    QUANTIZED_MIN_AGREEMENT,
    artifact_size,
    export_model,
    write_json,
    write_sidecar,
)
from recaptcha_tf.export.parity import (
    _sample,
    check_parity,
    describe_parity,
    list_images,
    run_images,
)
from recaptcha_tf.inference.artifacts import (
    EXTENSIONS,
    FORMATS,
    QUANTIZE,
    SIDECAR_SUFFIX,
    ExportError,
    _inference_config,
    _info_dict,
    _uses_mixed_precision,
    default_out,
    float32_model,
    inference_model,
    parity_path,
    read_sidecar,
    sidecar_path,
)
from recaptcha_tf.inference.predictor import predict_artifact
from recaptcha_tf.inference.runtimes import (
    RUNNERS,
    KerasRunner,
    OnnxRunner,
    Runner,
    SavedModelRunner,
    TFLiteRunner,
    decisions,
    load_images,
    load_runner,
)

__all__ = [
    "_inference_config",
    "_info_dict",
    "EXTENSIONS",
    "FLOAT_TOLERANCE",
    "FORMATS",
    "ONNX_OPSET",
    "QUANTIZE",
    "QUANTIZED_MIN_AGREEMENT",
    "RUNNERS",
    "SIDECAR_SUFFIX",
    "ExportError",
    "KerasRunner",
    "OnnxRunner",
    "Runner",
    "SavedModelRunner",
    "TFLiteRunner",
    "_sample",
    "_uses_mixed_precision",
    "artifact_size",
    "check_parity",
    "decisions",
    "default_out",
    "describe_parity",
    "export_model",
    "float32_model",
    "inference_model",
    "list_images",
    "load_images",
    "load_runner",
    "predict_artifact",
    "read_sidecar",
    "run_images",
    "parity_path",
    "sidecar_path",
    "write_json",
    "write_sidecar",
]
