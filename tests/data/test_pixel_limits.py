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
