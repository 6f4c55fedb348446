"""One pixel limit for every decode, checked on the header before decoding (decompression bombs)."""

import logging

import pytest
from conftest import fake_png_bomb, make_class_folders

TINY = dict(conv_layers=1, filters=4, dense_units=8)


def test_the_decoder_refuses_an_over_limit_header_before_decoding_even_in_tf_data():
    import tensorflow as tf

    from recaptcha_tf.data.images import CorruptImageError, load_image_array, set_max_pixels
    from recaptcha_tf.data.pipeline import make_dataset

    with pytest.raises(CorruptImageError, match="over the limit"):
        load_image_array(fake_png_bomb())
    with pytest.raises(tf.errors.InvalidArgumentError, match="pixel limit"):
        list(make_dataset([fake_png_bomb()], None, image_size=(24, 24)))
    previous = set_max_pixels(100)  # a 24x24 tile is over a limit of 100 pixels
    try:
        with pytest.raises(CorruptImageError, match="576 pixels, over the limit of 100"):
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.new("RGB", (24, 24)).save(buf, format="JPEG")
            load_image_array(buf.getvalue())
    finally:
        set_max_pixels(previous)


def test_training_skips_an_over_limit_image_and_names_it(tmp_path, caplog):
    from recaptcha_tf.data.balance import _read_rgb
    from recaptcha_tf.data.folders import scan_class_folders

    data = tmp_path / "d"
    make_class_folders(str(data), per_class=3)
    bomb = data / "bus" / "bomb.png"
    bomb.write_bytes(fake_png_bomb())
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        ds = scan_class_folders(str(data))
    assert str(bomb) not in ds.paths and len(ds.paths) == 9
    assert "over the pixel limit" in caplog.text and "bomb.png" in caplog.text
    assert _read_rgb(str(bomb)) is None  # balance never decodes it either


def _gif_with_a_frame_larger_than_its_canvas(frame=600, canvas=10) -> bytes:
    """A GIF whose header declares a ``canvas`` x ``canvas`` screen around a ``frame`` x ``frame`` first frame
    (TensorFlow decodes the frame)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("P", (frame, frame)).save(buf, format="GIF")
    data = bytearray(buf.getvalue())
    data[6:8], data[8:10] = canvas.to_bytes(2, "little"), canvas.to_bytes(2, "little")
    return bytes(data)


def test_a_gif_frame_larger_than_its_canvas_is_held_to_the_limit(tmp_path):
    """``predict``/``evaluate`` (``Inference.preprocess``) and training's decode check read the frame's size."""
    from recaptcha_tf.data.images import CorruptImageError, find_undecodable, set_max_pixels
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import inference_for
    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=4)
    run = str(tmp_path / "run")
    train_classifier(data, run, image_size=(16, 16), epochs=1, logdir=None, balance_per_class=0, model_kwargs=TINY)
    gif = tmp_path / "wide.gif"
    gif.write_bytes(_gif_with_a_frame_larger_than_its_canvas())
    previous = set_max_pixels(100_000)  # the 10x10 canvas is under it, the 600x600 frame over
    try:
        with pytest.raises(CorruptImageError, match="600x600"):
            inference_for(load_model(run)).preprocess(str(gif))
        assert find_undecodable([str(gif)], warn=False) == [0]
    finally:
        set_max_pixels(previous)
    assert find_undecodable([str(gif)], warn=False) == []  # under the default limit it decodes
