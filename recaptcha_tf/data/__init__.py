"""Datasets: class folders, text CAPTCHAs, splits, balancing, tf.data and the generator."""
