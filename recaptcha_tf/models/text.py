"""Text CAPTCHA models: CRNN with CTC, and fixed-length per-character heads.

* ``crnn``: convolutional backbone -> width-as-time sequence -> BiLSTM/GRU ->
  per-frame logits over ``num_classes = len(vocabulary) + 1`` (index 0 is the
  CTC blank). Trained with ``keras.losses.CTC``; decoded greedily or by beam
  search (:mod:`recaptcha_tf.inference.decoding`). Reads variable-length text.
* ``multihead``: the same backbone and RNN, then one learned query per
  character position attending over the frames, and a softmax over
  ``len(vocabulary) + 1`` classes per position (index 0 = "no character", so
  shorter labels are padded). Trained with label-smoothed cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from recaptcha_tf.layers import ImageNetPreprocessing, ImagesToSequence, PositionQueries
from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.registry import BN_MOMENTUM, register_model
from recaptcha_tf.models.transfer import MOBILENET_ALPHAS, application_backbone, rgb_input
from recaptcha_tf.models.weights import WeightsError, load_weights_file, require_file_weights


def _backbone(trunk_fn, input_shape, weights, model_name: str) -> keras.Model:
    """The convolutional part as a nested ``backbone`` model (frozen in a first phase, loadable from a file)."""
    weights = require_file_weights(weights, model_name)
    if weights == "imagenet":
        raise WeightsError(
            f"There are no ImageNet weights for the {model_name} backbone; pass --weights PATH "
            "(e.g. a model trained on synthetic CAPTCHAs) or none."
        )
    trunk_input = keras.Input(input_shape, name="normalised")
    backbone = keras.Model(trunk_input, trunk_fn(trunk_input), name=BACKBONE)
    if weights:
        load_weights_file(backbone, weights, model_name)
    return backbone


def _conv_trunk(filters: Sequence[int], width_pooling: Sequence[int]):
    """The CRNN's convolutional stages: each halves the height and divides the width by its pooling factor."""

    def trunk(x):
        for i, f in enumerate(filters):
            for j in range(2 if i >= 2 else 1):
                x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}_{j + 1}")(x)
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{i + 1}_{j + 1}_bn")(x)
                x = layers.ReLU(name=f"conv{i + 1}_{j + 1}_relu")(x)
            x = layers.MaxPooling2D((2, width_pooling[i]), name=f"pool{i + 1}")(x)
        return x

    return trunk


def _sequence_features(x, rnn: str, rnn_units: int, rnn_layers: int, dropout: float):
    """Feature map ``(B, h, T, C)`` -> left-to-right features ``(B, T, 2 * rnn_units)`` (bidirectional RNN).

    The sequence part runs in float32 even under a mixed policy: recurrences
    and CTC are sensitive to bfloat16's short mantissa; convolutions are not.
    """
    rnn_layer = {"lstm": layers.LSTM, "gru": layers.GRU}.get(rnn)
    if rnn_layer is None:
        raise ValueError(f"rnn must be 'lstm' or 'gru', got {rnn!r}.")
    x = ImagesToSequence(name="to_sequence", dtype="float32")(x)
    x = layers.Dense(rnn_units, activation="relu", name="sequence_dense", dtype="float32")(x)
    x = layers.Dropout(dropout, name="sequence_dropout", dtype="float32")(x)
    for i in range(rnn_layers):
        x = layers.Bidirectional(
            rnn_layer(rnn_units, return_sequences=True, dropout=dropout if i else 0.0, dtype="float32"),
            name=f"bi{rnn}{i + 1}",
            dtype="float32",
        )(x)
    return x


# The tuner's architecture names (c2d_layers, dense_neurons, ...) on the text models' arguments.
SEQUENCE_TUNE_ALIASES = {
    "c2d_layers": "conv_layers",
    "c2d_filters": "filters",
    "dense_layers": "rnn_layers",
    "dense_neurons": "rnn_units",
    "dropout": "dropout",
}


@register_model("crnn", head="ctc", tune_aliases=SEQUENCE_TUNE_ALIASES)
def build_crnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    filters: Sequence[int] = (16, 32, 64, 96),
    width_pooling: Sequence[int] = (2, 2, 1, 1),
    rnn: str = "lstm",
    rnn_units: int = 128,
    rnn_layers: int = 2,
    dropout: float = 0.25,
    output_activation: str | None = None,
    weights: str | None = None,
    name: str = "crnn",
) -> keras.Model:
    """CNN + bidirectional RNN producing per-frame CTC logits.

    Every conv stage halves the height; ``width_pooling`` sets how the width
    shrinks, so with the default ``(2, 2, 1, 1)`` a ``(48, 192)`` input gives
    ``T = 48`` frames: enough for 8 characters with repeats (CTC needs at least
    ``2 * length + 1`` frames in the worst case).

    Args:
        input_shape: ``(height, width, channels)``, pixels in ``[0, 255]``.
        num_classes: vocabulary size + 1 (blank at index 0).
        filters: filters per conv stage. The default ``(16, 32, 64, 96)`` costs a third of the
            multiply-adds of ``(32, 64, 128, 128)`` (about 84M against 260M per 48x192 image), which
            halves a training step on 2 CPU cores (0.43 s against 0.82 s at batch 16) and read
            captcha-v2 as well (``benchmarks/text_robustness.py``).
        width_pooling: horizontal pooling factor after each conv stage (vertical
            is always 2); their product divides the width into frames.
        rnn: ``"lstm"`` or ``"gru"``.
        rnn_units: units per direction.
        rnn_layers: stacked bidirectional layers.
        dropout: dropout on the sequence features and between RNN layers.
        weights: ``None`` or a file with the convolutional ``backbone``'s weights
            (``.weights.h5``, or a trained ``.keras`` text model to start from).

    Returns:
        Model mapping ``(B, H, W, C)`` to logits ``(B, T, num_classes)``.
    """
    backbone = _backbone(_conv_trunk(filters, width_pooling), input_shape, weights, name)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = _sequence_features(backbone(x), rnn, rnn_units, rnn_layers, dropout)
    outputs = layers.Dense(num_classes, activation=output_activation, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


# MobileNetV2's feature maps by their stride: the input of the first block at that stride's end (the widest
# features the stride has, before the next block downsamples).
MOBILENET_TAPS = {4: "block_3_expand_relu", 8: "block_6_expand_relu", 16: "block_13_expand_relu"}


def mobilenet_trunk(input_shape, alpha: float, stride: int, weights: str | None) -> keras.Model:
    """MobileNetV2's first blocks as a text trunk: ``(B, H, W, 3)`` in ``[-1, 1]`` -> ``(B, H/s, W/s, C)``.

    ``weights``: ``None``, ``"imagenet"`` (the cache or a download) or a ``.weights.h5`` file of the whole
    MobileNetV2 without its top (e.g. ``mobilenetv2_0.35_224_imagenet_notop.weights.h5``); a ``.keras`` text
    model with the same trunk loads into the truncated trunk instead. keras.applications builds its
    BatchNormalization with momentum 0.999, an average over ~1,000 steps that lags far behind a few thousand
    steps of fine-tuning; it is set to the package's :data:`BN_MOMENTUM`.
    """
    if float(alpha) not in MOBILENET_ALPHAS:
        raise ValueError(f"MobileNetV2 alpha must be one of {MOBILENET_ALPHAS}, not {alpha}.")
    if stride not in MOBILENET_TAPS:
        raise ValueError(f"stride must be one of {sorted(MOBILENET_TAPS)}, not {stride}.")
    name = f"crnn_mobilenetv2_{float(alpha)}"
    weights = require_file_weights(weights, name)
    text_model = bool(weights) and weights.endswith(".keras")
    full = application_backbone(
        keras.applications.MobileNetV2, name, input_shape[:2], None if text_model else weights, alpha=float(alpha)
    )
    trunk = keras.Model(full.input, full.get_layer(MOBILENET_TAPS[stride]).output, name=BACKBONE)
    for layer in trunk.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    if text_model:
        load_weights_file(trunk, weights, name)
    return trunk


@register_model("crnn_mobilenetv2", head="ctc", cpu_bfloat16=False)
def build_crnn_mobilenetv2(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    alpha: float = 0.35,
    stride: int = 8,
    rnn: str = "lstm",
    rnn_units: int = 128,
    rnn_layers: int = 2,
    dropout: float = 0.25,
    output_activation: str | None = None,
    weights: str | None = None,
    name: str = "crnn_mobilenetv2",
) -> keras.Model:
    """:func:`build_crnn` with MobileNetV2's first blocks as its convolutions, to start from ImageNet weights.

    The trunk downsamples height and width alike, so a ``(64, 256)`` input gives ``T = 256 / stride``
    frames (32 at the default stride 8: enough for 15 characters with repeats).

    Args:
        input_shape: ``(height, width, channels)``, pixels in ``[0, 255]``; one channel is repeated to three.
        num_classes: vocabulary size + 1 (blank at index 0).
        alpha: MobileNetV2 width multiplier (0.35 to 1.4).
        stride: 4, 8 or 16: where the trunk ends (see :data:`MOBILENET_TAPS`).
        rnn, rnn_units, rnn_layers, dropout: as :func:`build_crnn`.
        weights: ``None`` (random), ``"imagenet"``, a MobileNetV2 ``.weights.h5`` file (the whole network
            without its top), or a trained ``.keras`` text model of this kind.

    Returns:
        Model mapping ``(B, H, W, C)`` to logits ``(B, W / stride, num_classes)``.
    """
    backbone = mobilenet_trunk(input_shape, alpha, stride, weights)
    inputs = keras.Input(input_shape, name="pixels")
    x = ImageNetPreprocessing("tf", name="normalise", dtype="float32")(rgb_input(inputs, input_shape[-1]))
    x = _sequence_features(backbone(x), rnn, rnn_units, rnn_layers, dropout)
    outputs = layers.Dense(num_classes, activation=output_activation, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model("multihead", head="multihead", tune_aliases=SEQUENCE_TUNE_ALIASES)
def build_multihead(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    max_length: int = 6,
    filters: Sequence[int] = (16, 32, 64, 96),
    width_pooling: Sequence[int] = (2, 2, 1, 1),
    rnn: str = "lstm",
    rnn_units: int = 128,
    rnn_layers: int = 2,
    attention_heads: int = 4,
    dropout: float = 0.25,
    output_activation: str = "softmax",
    weights: str | None = None,
    name: str = "multihead",
) -> keras.Model:
    """One softmax head per character position, on features that keep the left-to-right order.

    The CRNN's convolutional backbone and bidirectional RNN read the image as a
    sequence of ``T`` frames; character position ``i`` then has a learned query
    (:class:`~recaptcha_tf.layers.PositionQueries`) that attends over the frames
    (Keras ``MultiHeadAttention``, ``attention_heads`` heads) and a shared softmax
    classifies what it found. Flattening the feature map into one dense layer per
    head (the seed project's design) reached 0.14 exact match on captcha-v2:
    every head had to learn where its character is from a few hundred images.

    Args:
        max_length: number of heads (longest label); shorter labels end with class 0.
        filters, width_pooling, rnn, rnn_units, rnn_layers, dropout: as :func:`build_crnn`.
        attention_heads: attention heads of the position queries.
        weights: ``None`` or a file with the convolutional ``backbone``'s weights (``.weights.h5`` or a
            ``.keras`` text model with the same backbone, a CRNN's included).

    Returns:
        Model mapping ``(B, H, W, C)`` to probabilities ``(B, max_length, num_classes)``.
    """
    backbone = _backbone(_conv_trunk(filters, width_pooling), input_shape, weights, name)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    frames = _sequence_features(backbone(x), rnn, rnn_units, rnn_layers, dropout)
    width = 2 * rnn_units
    queries = PositionQueries(max_length, width, name="position_queries", dtype="float32")(frames)
    found = layers.MultiHeadAttention(
        attention_heads, width // attention_heads, dropout=dropout, name="position_attention", dtype="float32"
    )(queries, frames)
    found = layers.LayerNormalization(name="position_norm", dtype="float32")(
        layers.Add(dtype="float32")([queries, found])
    )
    found = layers.Dropout(dropout, name="heads_dropout", dtype="float32")(found)
    outputs = layers.Dense(num_classes, activation=output_activation, name="characters", dtype="float32")(found)
    return keras.Model(inputs, outputs, name=name)
