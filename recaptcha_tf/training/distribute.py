"""Choosing a ``tf.distribute`` strategy for ``train`` and ``tune``.

=============  ===============================================================
``default``    one device (the GPU if there is one, else the CPU)
``mirrored``   every local GPU, synchronous data parallelism (``MirroredStrategy``)
``multiworker`` several machines (or processes) described by ``TF_CONFIG``
               (``MultiWorkerMirroredStrategy``), each with its local GPUs
``tpu``        a Cloud / Colab TPU (``TPUStrategy`` via ``TPUClusterResolver``)
``auto``       ``multiworker`` when ``TF_CONFIG`` names several workers, ``tpu``
               when a TPU is attached, ``mirrored`` with two or more GPUs,
               otherwise ``default``
=============  ===============================================================

``--batch-size`` is per replica: the global batch is ``batch_size * replicas``
and the learning rate scales linearly with it (Goyal et al. 2017), so a recipe
tuned on one device keeps its per-example behaviour on eight.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger("recaptcha_tf")

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None


def _has_tpu() -> bool:
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")) or bool(
        tf.config.list_logical_devices("TPU")
    )


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose from {STRATEGIES}.")
    if name == "auto":
        workers = _tf_config().get("cluster", {}).get("worker", [])
        if len(workers) + len(_tf_config().get("cluster", {}).get("chief", [])) > 1:
            name = "multiworker"
        elif _has_tpu():
            name = "tpu"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not _tf_config().get("cluster"):
            raise ValueError(
                "--strategy multiworker needs TF_CONFIG describing the cluster "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def scale_for_replicas(batch_size: int, learning_rate: float, replicas: int) -> tuple[int, float]:
    """Global batch size and learning rate for ``replicas`` replicas (linear scaling rule)."""
    replicas = max(1, int(replicas))
    return batch_size * replicas, learning_rate * replicas


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's files (always true outside multi-worker training)."""
    task = _tf_config().get("task", {})
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or not task:
        return True
    return task.get("type") == "chief" or (
        task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in _tf_config().get("cluster", {})
    )


def worker_dir(out: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """Where this process writes: ``out`` on the chief, ``out/worker<i>`` on the other workers.

    In multi-worker training every worker runs the same checkpoint and backup
    callbacks; only the chief's copy is the run's, the others write to a private
    folder so that no two processes write the same file.
    """
    if is_chief(strategy):
        return out
    return os.path.join(out, f"worker{_tf_config().get('task', {}).get('index', 0)}")


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard a multi-worker dataset by element (datasets built from in-memory file lists have no files to shard)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit(strategy: tf.distribute.Strategy, model, *args, **kwargs):
    """``model.fit(*args, **kwargs)`` under ``strategy``.

    Works around keras-team/keras#20585: with ``MultiWorkerMirroredStrategy``,
    Keras 3's ``fit`` all-reduces the first distributed batch (a tuple) to build
    the model and fails ("Attempt to convert a value (PerReplica...)"). The model
    was created under the strategy's scope, so its variables are distributed;
    letting ``fit`` take the strategy from the enclosing scope instead of the one
    recorded on the model skips that step and changes nothing else.

    A ``tf.data.Dataset`` is shuffled by its own pipeline, so ``shuffle`` defaults
    to ``False`` for one (Keras would otherwise warn that it ignores ``shuffle=True``).
    """
    x = args[0] if args else kwargs.get("x")
    if isinstance(x, tf.data.Dataset):
        kwargs.setdefault("shuffle", False)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with strategy.scope():
            return model.fit(*args, **kwargs)
    from keras.src.backend.tensorflow import trainer as tf_trainer

    model._distribute_strategy = None
    original = tf_trainer.reduce_per_replica
    tf_trainer.reduce_per_replica = _reduce_per_replica_multi_worker
    try:
        with strategy.scope():
            return model.fit(*args, **kwargs)
    finally:
        tf_trainer.reduce_per_replica = original


def _reduce_per_replica_multi_worker(values, strategy, reduction):
    """Keras 3's ``reduce_per_replica`` with scalar-safe means across workers.

    Keras (3.15) averages each step's logs with ``strategy.reduce("MEAN", v, axis=0)``,
    which fails on the scalar losses and metrics a train step returns; a mean
    over replicas (``axis=None``) is what is meant.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow.trainer import _multi_worker_concat

    if reduction == "concat":
        return tree.map_structure(lambda v: _multi_worker_concat(v, strategy), values)
    op = "SUM" if reduction == "sum" else "MEAN"
    return tree.map_structure(lambda v: strategy.reduce(op, v, axis=None), values)


def unsharded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Give every worker the whole dataset (e.g. images a callback predicts on every worker)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def synchronize_batchnorm(model) -> int:
    """Make every BatchNormalization layer compute its batch statistics across all replicas.

    Without it each worker updates its moving mean and variance from its own
    shard, so the workers' models drift apart in inference mode although their
    trained weights agree. Returns the number of layers changed.
    """
    import keras

    def walk(layer):
        yield layer
        for sub in getattr(layer, "layers", []):
            yield from walk(sub)

    changed = 0
    for layer in walk(model):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed
