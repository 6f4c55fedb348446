"""Text CAPTCHA datasets: image files named by their label, CSV lists, or Parquet tables.

Every format loads into the same :class:`TextDataset` (:mod:`.dataset`) through one table of formats
(:mod:`.formats`, :func:`load_text_dataset`):

* :mod:`.files`: a folder of images whose file names carry the label (``226md.png``, ``abc12-3.png``);
* :mod:`.csv_format`: a ``.csv`` of ``path,text`` rows;
* :mod:`.parquet`: Parquet files in the Hugging Face layout.

:mod:`.vocabulary` maps characters to indices (0 is the CTC blank), :mod:`.fit` fits a model's input to a
training set, and :mod:`.task_data` prepares a set for the ``text`` task (encoded targets and the run's split).

Label indices start at 1: index 0 is reserved for the CTC blank and for padding, so
``Vocabulary("abc").encode("cab") == [3, 1, 2]``.
"""

from recaptcha_tf.data.text.csv_format import load_text_csv
from recaptcha_tf.data.text.dataset import TextDataset, check_vocabulary
from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN, label_from_filename, load_text_folder
from recaptcha_tf.data.text.formats import (
    TEXT_FORMATS,
    TextFormat,
    load_text_dataset,
    register_text_format,
    text_data_path,
)
from recaptcha_tf.data.text.parquet import (
    HF_FEATURES_METADATA,
    IMAGE_COLUMN_CANDIDATES,
    LABEL_COLUMN_CANDIDATES,
    detect_parquet_columns,
    load_text_parquet,
    merge_parquet,
    write_text_parquet,
)
from recaptcha_tf.data.text.vocabulary import (
    CASE_MODES,
    DEFAULT_CHARSET,
    OutOfVocabularyError,
    Vocabulary,
    apply_case,
    expand_charset,
)

__all__ = [
    "CASE_MODES",
    "DEFAULT_CHARSET",
    "DEFAULT_LABEL_PATTERN",
    "HF_FEATURES_METADATA",
    "IMAGE_COLUMN_CANDIDATES",
    "LABEL_COLUMN_CANDIDATES",
    "TEXT_FORMATS",
    "OutOfVocabularyError",
    "TextDataset",
    "TextFormat",
    "Vocabulary",
    "apply_case",
    "check_vocabulary",
    "detect_parquet_columns",
    "expand_charset",
    "label_from_filename",
    "load_text_csv",
    "load_text_dataset",
    "load_text_folder",
    "load_text_parquet",
    "merge_parquet",
    "register_text_format",
    "text_data_path",
    "write_text_parquet",
]
