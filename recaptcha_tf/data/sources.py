"""Where a data path's data is: the same data under two paths (a download's wrapper folder and the folder inside it)."""

from __future__ import annotations

import os

from recaptcha_tf.data.folders import class_folder_root
from recaptcha_tf.data.text.formats import text_data_path


def same_folder(a: str, b: str) -> bool:
    """Whether two data paths are the same data: the same file or folder, or folders that hold the same class
    folders or text images (a download's wrapper folder and the folder inside it with the data)."""
    if not (a and b):
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    if not (os.path.isdir(a) and os.path.isdir(b)):
        return False
    return any(os.path.realpath(find(a)) == os.path.realpath(find(b)) for find in (class_folder_root, text_data_path))
