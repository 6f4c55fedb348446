"""Text CAPTCHA datasets: labels from file names, vocabularies, folders and Parquet files."""

import io
import json
import logging
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.generator import generate_captchas
from recaptcha_tf.data.images import decode_image
from recaptcha_tf.data.text.dataset import TextDataset
from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN, label_from_filename, load_text_folder
from recaptcha_tf.data.text.formats import load_text_dataset
from recaptcha_tf.data.text.parquet import load_text_parquet, merge_parquet, write_text_parquet
from recaptcha_tf.data.text.vocabulary import OutOfVocabularyError, Vocabulary, expand_charset


def image_bytes(seed=0, size=(40, 16), format="PNG"):
    """Small random RGB image, encoded."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=format)
    return buffer.getvalue()


def write_files(folder, names):
    os.makedirs(folder, exist_ok=True)
    for i, name in enumerate(names):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(image_bytes(seed=i))
    return str(folder)


def hf_table(images, texts, label_column="text"):
    """A table like a Hugging Face ``datasets`` export: Image struct + string label."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    image = pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(images)], type=image_type)
    return pa.table({"image": image, label_column: pa.array(texts, pa.string())})


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "name, label",
    [
        ("226md.png", "226md"),
        ("abc12-3.png", "abc12"),
        ("label_17.png", "label"),
        ("x7Yz9.jpeg", "x7Yz9"),
        ("/some/folder/2b827.PNG", "2b827"),
        ("abc12 (2).png", "abc12"),
    ],
)
def test_label_from_filename_default_pattern(name, label):
    assert label_from_filename(name) == label
    assert label_from_filename(name, DEFAULT_LABEL_PATTERN) == label


def test_label_from_filename_custom_patterns():
    assert label_from_filename("captcha_ab12_7.png", r"^captcha_(?P<label>[a-z0-9]+)_\d+\.png$") == "ab12"
    # Without a named group, group 1 is the label.
    assert label_from_filename("img-Q7x.png", r"^img-(\w+)\.png$") == "Q7x"


def test_label_from_filename_errors_name_the_file():
    with pytest.raises(DatasetError, match="nolabel.png"):
        label_from_filename("nolabel.png", r"^captcha_(?P<label>\w+)\.png$")
    with pytest.raises(DatasetError, match="empty label"):
        label_from_filename("x.png", r"^x(?P<label>\w*)\.png$")
    with pytest.raises(DatasetError, match=r"\.hidden"):
        label_from_filename(".hidden")


# ----------------------------------------------------------------------------- vocabulary


def test_expand_charset():
    assert expand_charset("a-z0-9") == "abcdefghijklmnopqrstuvwxyz0123456789"
    assert len(expand_charset("A-Za-z0-9")) == 62
    assert expand_charset("2345678bcdefgmnpwxy") == "2345678bcdefgmnpwxy"
    assert expand_charset("aab-d") == "abcd"  # de-duplicated, order kept
    assert expand_charset("-a-c") == "-abc"  # a leading '-' is literal
    assert expand_charset("a-") == "a-"
    for bad in ("", "z-a", "0-z"):
        with pytest.raises(ValueError):
            expand_charset(bad)


def test_vocabulary_encode_decode_and_config():
    vocab = Vocabulary(expand_charset("a-z0-9"))
    assert vocab.size == 36
    codes = vocab.encode("a0z9")
    assert codes == [1, 27, 26, 36]  # 0 is reserved for the CTC blank
    assert vocab.decode(codes) == "a0z9"
    assert vocab.decode([0, 1, 0, 2, 99, -1, 0]) == "ab"
    assert vocab.decode(np.array([3, 3, 0])) == "cc"  # repeats are not collapsed here

    config = json.loads(json.dumps(vocab.to_config()))
    assert Vocabulary.from_config(config) == vocab
    assert Vocabulary.from_labels(["cab", "b2a"]).characters == "2abc"
    with pytest.raises(ValueError, match="unique"):
        Vocabulary("abca")


def test_vocabulary_out_of_vocabulary_error():
    vocab = Vocabulary("abc")
    with pytest.raises(OutOfVocabularyError) as info:
        vocab.encode("abX", source="abX.png")
    message = str(info.value)
    assert "abX.png" in message and "'X'" in message and "'abc'" in message
    assert info.value.characters == "X"
    assert isinstance(info.value, ValueError)


# ----------------------------------------------------------------------------- folders


def test_load_text_folder_skips_corrupt_and_ignores_other_files(tmp_path, caplog):
    folder = write_files(tmp_path / "caps", ["226md.png", "abc12-3.png", "label_17.png"])
    with open(os.path.join(folder, "zz99.png"), "wb") as f:
        f.write(np.random.default_rng(0).bytes(300))  # not an image
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not an image\n")
    with open(os.path.join(folder, "j0k1.png"), "wb") as f:
        f.write(image_bytes(seed=9, format="JPEG"))  # JPEG content, .png name

    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        data = load_text_folder(folder)

    assert data.names == ["226md.png", "abc12-3.png", "j0k1.png", "label_17.png"]
    assert data.labels == ["226md", "abc12", "j0k1", "label"]
    assert data.skipped == ["zz99.png"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "zz99.png" in warnings[0].getMessage()
    assert "notes.txt" not in caplog.text
    jpeg_as_png = data.sources[data.names.index("j0k1.png")]
    assert tuple(decode_image(open(jpeg_as_png, "rb").read()).shape) == (16, 40, 3)


def test_load_text_folder_case_handling(tmp_path):
    folder = write_files(tmp_path / "caps", ["AbC1.png", "xY2z.png"])
    assert load_text_folder(folder, validate=False).labels == ["AbC1", "xY2z"]
    assert load_text_folder(folder, case="lower", validate=False).labels == ["abc1", "xy2z"]
    assert load_text_folder(folder, case="upper", validate=False).labels == ["ABC1", "XY2Z"]
    with pytest.raises(ValueError, match="case"):
        load_text_folder(folder, case="title")


def test_load_text_folder_out_of_vocabulary_names_file_and_character(tmp_path):
    folder = write_files(tmp_path / "caps", ["ab12.png", "cdQ3.png"])
    vocab = Vocabulary(expand_charset("a-z0-9"))
    with pytest.raises(OutOfVocabularyError) as info:
        load_text_folder(folder, vocabulary=vocab, validate=False)
    assert "cdQ3.png" in str(info.value) and "'Q'" in str(info.value)
    # Lower-casing first makes the same folder fit.
    assert load_text_folder(folder, case="lower", vocabulary=vocab, validate=False).labels == ["ab12", "cdq3"]


def test_load_text_folder_missing_or_empty(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_text_folder(str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="No image files"):
        load_text_folder(str(empty))


def test_text_dataset_subset_and_max_length():
    data = TextDataset(sources=["a", "b", "c"], labels=["ab", "abcd", "x"], names=["1", "2", "3"])
    assert len(data) == 3 and data.max_length() == 4
    sub = data.subset([2, 0])
    assert sub.labels == ["x", "ab"] and sub.names == ["3", "1"] and sub.max_length() == 2
    assert TextDataset([], [], []).max_length() == 0
    with pytest.raises(ValueError):
        TextDataset(sources=["a"], labels=[], names=["1"])


# ----------------------------------------------------------------------------- Parquet


def test_parquet_round_trip(tmp_path):
    folder = write_files(tmp_path / "caps", ["226md.png", "abc12-3.png", "label_17.png"])
    data = load_text_folder(folder, validate=False)
    out = str(tmp_path / "pq" / "caps.parquet")
    write_text_parquet(data, out)

    schema = pq.read_schema(out)
    assert schema.names == ["image", "text"]
    assert [f.name for f in schema.field("image").type] == ["bytes", "path"]
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"]["_type"] == "Image"  # datasets.load_dataset decodes it as an Image feature

    back = load_text_parquet(out)
    assert back.labels == data.labels
    assert back.names == ["parquet:caps.parquet#0", "parquet:caps.parquet#1", "parquet:caps.parquet#2"]
    for source, path in zip(back.sources, data.sources):
        assert source == open(path, "rb").read()
        assert tuple(decode_image(source).shape) == (16, 40, 3)
    assert pq.read_table(out).column("image").to_pylist()[0]["path"] == "226md.png"


def test_parquet_column_auto_detection_and_merge(tmp_path):
    first = str(tmp_path / "first.parquet")
    pq.write_table(hf_table([image_bytes(1), image_bytes(2)], ["ab1", "cd2"], label_column="text"), first)
    # Plain binary image column, label in ``solution``; an int ``label`` column must not be taken.
    second = str(tmp_path / "second.parquet")
    pq.write_table(
        pa.table(
            {
                "label": pa.array([7, 8, 9], pa.int64()),
                "image_bytes": pa.array([image_bytes(3), image_bytes(4), image_bytes(5)], pa.binary()),
                "solution": pa.array(["ef3", "gh4", "ij5"], pa.string()),
            }
        ),
        second,
    )
    # String ``label`` column and an ``img`` struct.
    third = str(tmp_path / "third.parquet")
    table = hf_table([image_bytes(6)], ["kl6"], label_column="label").rename_columns(["img", "label"])
    pq.write_table(table, third)

    assert load_text_parquet(second).labels == ["ef3", "gh4", "ij5"]
    assert load_text_parquet(third, validate=False).labels == ["kl6"]

    merged = str(tmp_path / "merged.parquet")
    assert merge_parquet([first, second, third], merged) == 6
    table = pq.read_table(merged)
    assert table.column_names == ["image", "text"]
    assert pa.types.is_struct(table.schema.field("image").type)
    assert table.column("text").to_pylist() == ["ab1", "cd2", "ef3", "gh4", "ij5", "kl6"]
    paths = [row["path"] for row in table.column("image").to_pylist()]
    assert paths == ["0.png", "1.png", None, None, None, "0.png"]

    data = load_text_dataset(merged)
    assert data.labels == ["ab1", "cd2", "ef3", "gh4", "ij5", "kl6"]
    assert data.sources[2] == image_bytes(3)

    with pytest.raises(DatasetError, match="also an input"):
        merge_parquet([first, merged], merged)


def test_parquet_undetectable_columns_list_what_exists(tmp_path):
    path = str(tmp_path / "odd.parquet")
    pq.write_table(pa.table({"picture": pa.array([image_bytes(0)], pa.binary()), "caption": pa.array(["ab12"])}), path)
    with pytest.raises(DatasetError) as info:
        load_text_parquet(path)
    assert "picture" in str(info.value) and "caption" in str(info.value)
    data = load_text_parquet(path, image_column="picture", label_column="caption")
    assert data.labels == ["ab12"]
    with pytest.raises(DatasetError, match="no column 'answer'"):
        load_text_parquet(path, image_column="picture", label_column="answer")


def test_parquet_skips_null_and_corrupt_rows(tmp_path, caplog):
    path = str(tmp_path / "rows.parquet")
    pq.write_table(
        pa.table(
            {
                "image": pa.array([image_bytes(0), None, b"garbage", image_bytes(1, format="JPEG")], pa.binary()),
                "text": pa.array(["ab1", "cd2", "ef3", None]),
            }
        ),
        path,
    )
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        data = load_text_parquet(path, case="upper")
    assert data.labels == ["AB1"]
    assert data.skipped == ["parquet:rows.parquet#1", "parquet:rows.parquet#3", "parquet:rows.parquet#2"]
    assert "parquet:rows.parquet#2" in caplog.text


def test_load_text_dataset_dispatch(tmp_path):
    folder = write_files(tmp_path / "caps", ["ab12.png", "cd34.png"])
    assert load_text_dataset(folder, validate=False).labels == ["ab12", "cd34"]

    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(hf_table([image_bytes(1)], ["b1"]), str(shards / "b.parquet"))
    pq.write_table(hf_table([image_bytes(2)], ["a2"]), str(shards / "a.parquet"))
    (shards / "README.md").write_text("dataset card")
    assert load_text_dataset(str(shards), validate=False).labels == ["a2", "b1"]  # sorted by file name
    assert load_text_dataset(str(shards / "b.parquet"), validate=False).labels == ["b1"]
    both = [str(shards / "b.parquet"), str(shards / "a.parquet")]
    assert load_text_dataset(both, validate=False).labels == ["b1", "a2"]
    with pytest.raises(DatasetError, match="not .parquet"):
        load_text_dataset(str(shards / "README.md"))
    with pytest.raises(DatasetError, match="does not exist"):
        load_text_dataset(str(tmp_path / "missing"))


def test_the_folder_a_download_unzips_to_is_read_through(tmp_path):
    """`unzip captcha_images_v2.zip` in a download folder: the images sit one or two folders down."""
    inner = tmp_path / "download" / "captcha-version-2-images" / "samples"
    inner.mkdir(parents=True)
    write_files(inner, ["ab12.png", "cd34.png", "da21.png", "bc43.png"])
    (tmp_path / "download" / "LICENSE.txt").write_text("terms")
    assert load_text_dataset(str(tmp_path / "download"), validate=False).labels == ["ab12", "bc43", "cd34", "da21"]
    # A run's split names files that exist, and the wrapper and the inner folder are the same data.
    import json

    from recaptcha_tf.data.sources import same_folder
    from recaptcha_tf.data.text.task_data import text_task_data

    out = tmp_path / "run"
    text_task_data(str(tmp_path / "download"), str(out), charset="abcd1234", fractions="50/25/25")
    manifest = json.load(open(out / "split.json"))
    entries = [e for part in ("train", "val", "test") for e in manifest[part]]
    paths = [e if isinstance(e, str) else e[0] for e in entries]
    assert len(paths) == 4 and all(os.path.isfile(os.path.join(manifest["root"], p)) for p in paths)
    assert same_folder(str(tmp_path / "download"), str(inner))
    two = tmp_path / "two"
    for name in ("a", "b"):
        write_files(two / name, ["ab12.png"])
    with pytest.raises(DatasetError, match="neither image files"):  # which one is meant is not ours to guess
        load_text_dataset(str(two))


def test_an_integer_label_column_is_named_with_its_type(tmp_path):
    path = str(tmp_path / "codes.parquet")
    pq.write_table(pa.table({"image": pa.array([image_bytes(0)], pa.binary()), "label": pa.array([123])}), path)
    with pytest.raises(DatasetError, match=r"Column 'label' .* has type int64, .*leading zeros") as info:
        load_text_parquet(path)
    assert "Cannot find" not in str(info.value) and "--label-column" in str(info.value)


def test_names_with_more_than_a_label_are_said_once(tmp_path, caplog):
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("226md.png", "226md-2.png", "x8kq2 (3).png", "ab cd.png", "ef gh.png"):
        Image.new("RGB", (40, 16), "white").save(folder / name)
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        data = load_text_folder(str(folder), validate=False)
    assert sorted(data.labels) == ["226md", "226md", "ab", "ef", "x8kq2"]  # the rule is unchanged
    said = [r.getMessage() for r in caplog.records if "hold more than a label" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("2 file name(s)") and "'ab cd.png' is read as 'ab'" in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        load_text_folder(str(folder), pattern=r"^(?P<label>[^.]+)\.png$", validate=False)  # the user's own rule
    assert not [r for r in caplog.records if "hold more than a label" in r.getMessage()]


def test_two_parquet_files_of_one_name_keep_their_rows_apart(tmp_path):
    """``a/train.parquet`` and ``b/train.parquet``: every row has its own name (a split keys on them)."""
    data = str(tmp_path / "caps")
    generate_captchas(data, count=4, length=(3, 3), charset="abc", size=(64, 24), seed=0)
    first, second = str(tmp_path / "a" / "train.parquet"), str(tmp_path / "b" / "train.parquet")
    os.makedirs(os.path.dirname(first))
    os.makedirs(os.path.dirname(second))
    write_text_parquet(load_text_folder(data), first)
    write_text_parquet(load_text_folder(data), second)
    both = load_text_parquet([first, second])
    assert len(both.names) == 8 and len(set(both.names)) == 8
    assert load_text_parquet(first).names[0] == "parquet:train.parquet#0"  # one file: names as before


@pytest.mark.slow
def test_train_text_on_a_list_of_parquet_files(tmp_path):
    """``recaptcha_tf.train(task="text", data=[a.parquet, b.parquet])``, as the API documents."""
    import recaptcha_tf

    data = str(tmp_path / "caps")
    generate_captchas(data, count=24, length=(3, 3), charset="abc", size=(64, 24), seed=0)
    first, second = str(tmp_path / "first.parquet"), str(tmp_path / "second.parquet")
    write_text_parquet(load_text_folder(data), first)
    write_text_parquet(load_text_folder(data), second)
    run = recaptcha_tf.train(
        task="text", data=[first, second], out=str(tmp_path / "run"), charset="abc", image_size=(24, 64), epochs=1,
        batch_size=8, logdir=None, model_kwargs={"rnn_units": 8, "filters": [4, 4, 8, 8]},
    )  # fmt: skip
    config = json.load(open(os.path.join(run.path, "config.json")))
    assert config["data"] == [os.path.abspath(first), os.path.abspath(second)]
    assert run.summary["test"]["n"] > 0
