"""Input pipeline throughput: images/s over one epoch of a class-folder dataset.

Compares, in one run on the same files:
  * bare decode: parallel read + decode only (the ceiling for this machine),
  * naive: sequential map, no cache, no prefetch,
  * project, cold: recaptcha_tf.data.pipeline.make_dataset, first epoch (fills the cache),
  * project, warm: the same dataset, second epoch (from the in-memory cache).
Ratios are against the naive pipeline.

    python benchmarks/pipeline.py --data ../shared/data/recaptcha-tiles
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, machine, table, write_results


def consume(ds) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    for batch in ds:
        x = batch[0] if isinstance(batch, tuple) else batch
        n += int(x.shape[0]) if len(x.shape) == 4 else 1
    return n, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import tensorflow as tf

    from recaptcha_tf.data.folders import scan_class_folders
    from recaptcha_tf.data.images import decode_image
    from recaptcha_tf.data.pipeline import make_dataset, tile_augmentation

    ds = scan_class_folders(args.data)
    paths, labels = ds.paths, ds.labels
    size = (args.image_size, args.image_size)
    rows = []

    bare = (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(lambda p: decode_image(tf.io.read_file(p)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    rows.append(("bare decode (parallel read+decode, ceiling)", *consume(bare)))
    naive = make_dataset(
        paths, labels, image_size=size, batch_size=args.batch_size, cache=False, parallel=False, prefetch=False
    )
    rows.append(("naive (sequential map, no cache, no prefetch)", *consume(naive)))
    project = make_dataset(paths, labels, image_size=size, batch_size=args.batch_size, shuffle=True, cache=True)
    rows.append(("project, epoch 1 (parallel map, fills cache)", *consume(project)))
    rows.append(("project, epoch 2 (from cache)", *consume(project)))
    augmented = make_dataset(
        paths,
        labels,
        image_size=size,
        batch_size=args.batch_size,
        shuffle=True,
        cache=True,
        augment=tile_augmentation(),
    )
    consume(augmented)
    rows.append(("project + augmentation, epoch 2 (from cache)", *consume(augmented)))

    naive_rate = rows[1][1] / rows[1][2]
    out = [
        {
            "pipeline": name,
            "images": n,
            "seconds": round(s, 2),
            "images_per_s": round(n / s, 1),
            "x_naive": round((n / s) / naive_rate, 2),
        }
        for name, n, s in rows
    ]
    print(table(out, ["pipeline", "images", "seconds", "images_per_s", "x_naive"]))
    path = write_results(
        "pipeline",
        {
            "command": f"python benchmarks/pipeline.py --data {args.data}",
            "machine": machine(),
            "image_size": size,
            "rows": out,
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
